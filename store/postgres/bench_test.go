package postgres_test

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/drbot-dev/drbot/store"
)

// BenchmarkAppendAudit appends audit rows from parallel goroutines; every
// append serialises on the chain tip.
func BenchmarkAppendAudit(b *testing.B) {
	ctx := ctxT(b)
	db, _ := openDB(b)
	data := json.RawMessage(`{"step":"pg_restore","target":"postgres/main","took_ms":1234}`)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.AppendAudit(ctx, store.AuditEvent{Actor: "U1", Kind: "step.finished", Data: data}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkOpenIncident opens distinct incidents, each with an audit row and a
// job, from parallel goroutines.
func BenchmarkOpenIncident(b *testing.B) {
	ctx := ctxT(b)
	db, _ := openDB(b)
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("PBENCH%d", n.Add(1))
			if _, _, err := db.OpenIncident(ctx, store.Incident{PagerDutyID: id, Service: "inflow", Title: "bench"}, noteJob(id)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
