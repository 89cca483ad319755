package postgres_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/store"
)

func TestAuditConcurrentWriters(t *testing.T) {
	ctx := ctxT(t)
	db, _ := openDB(t)
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				// Key order, spacing and unicode that jsonb normalises.
				data := fmt.Sprintf(`{"z": %d,  "a":{"y":"é\u00e9","b":[1, 2.50, null]}, "w":%d}`, i, w)
				if _, err := db.AppendAudit(ctx, store.AuditEvent{Actor: fmt.Sprintf("U%d", w), Kind: "test.write", Data: json.RawMessage(data)}); err != nil {
					t.Errorf("AppendAudit: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	rep, err := db.VerifyAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Rows != writers*each {
		t.Errorf("VerifyAudit = %+v, want OK with %d rows", rep, writers*each)
	}
	evs, err := db.AuditEvents(ctx, store.AuditFilter{Limit: 5, AfterSeq: 10})
	if err != nil || len(evs) != 5 || evs[0].Seq <= 10 {
		t.Errorf("AuditEvents page = %d rows, %v", len(evs), err)
	}
	for i := 1; i < len(evs); i++ {
		if string(evs[i].PrevHash) != string(evs[i-1].Hash) || evs[i].Seq <= evs[i-1].Seq {
			t.Errorf("rows %d and %d are not chained", evs[i-1].Seq, evs[i].Seq)
		}
	}
}

func TestAuditAppendValidates(t *testing.T) {
	ctx := ctxT(t)
	db, _ := openDB(t)
	for _, ev := range []store.AuditEvent{
		{Kind: "x"},
		{Actor: "U1"},
		{Actor: "U1", Kind: "x", Data: json.RawMessage(`{"broken"`)},
	} {
		if _, err := db.AppendAudit(ctx, ev); err == nil {
			t.Errorf("AppendAudit(%+v) succeeded", ev)
		}
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.FixedZone("X", 3600))
	ev, err := db.AppendAudit(ctx, store.AuditEvent{Actor: "U1", Kind: "x", At: at})
	if err != nil {
		t.Fatal(err)
	}
	if !ev.At.Equal(at.Truncate(time.Microsecond)) || string(ev.Data) != "{}" || len(ev.Hash) != 32 || len(ev.PrevHash) != 32 {
		t.Errorf("appended = %+v", ev)
	}
	if rep, err := db.VerifyAudit(ctx); err != nil || !rep.OK() || rep.Rows != 1 {
		t.Errorf("VerifyAudit = %+v, %v", rep, err)
	}
}

func TestAuditTamperingDetected(t *testing.T) {
	ctx := ctxT(t)
	db, url := openDB(t)
	var seqs []int64
	for i := range 6 {
		ev, err := db.AppendAudit(ctx, store.AuditEvent{Actor: "U1", Kind: "test.write", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ev.Seq)
	}
	conn := sqlConn(t, url)

	// The trigger refuses changes through normal SQL.
	for _, q := range []string{
		"UPDATE audit_events SET actor = 'mallory' WHERE seq = " + fmt.Sprint(seqs[1]),
		"DELETE FROM audit_events WHERE seq = " + fmt.Sprint(seqs[1]),
		"TRUNCATE audit_events",
	} {
		_, err := conn.Exec(ctx, q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s = %v, want the append-only refusal", q, err)
		}
	}
	if rep, err := db.VerifyAudit(ctx); err != nil || !rep.OK() || rep.Rows != 6 {
		t.Fatalf("VerifyAudit before tampering = %+v, %v", rep, err)
	}

	// A superuser bypasses the trigger and edits one row's data.
	if _, err := conn.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `UPDATE audit_events SET data = '{"i": 99}' WHERE seq = $1`, seqs[3]); err != nil {
		t.Fatal(err)
	}
	rep, err := db.VerifyAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.FirstBroken != seqs[3] || rep.OK() || !strings.Contains(rep.Problem, "modified") || rep.Rows != 6 {
		t.Errorf("after editing seq %d: %+v", seqs[3], rep)
	}

	// Deleting a middle row (after the edited one is put back) breaks the next row's link.
	if _, err := conn.Exec(ctx, `UPDATE audit_events SET data = '{"i": 3}' WHERE seq = $1`, seqs[3]); err != nil {
		t.Fatal(err)
	}
	if rep, err := db.VerifyAudit(ctx); err != nil || !rep.OK() {
		t.Fatalf("after restoring seq %d: %+v, %v", seqs[3], rep, err)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM audit_events WHERE seq = $1`, seqs[2]); err != nil {
		t.Fatal(err)
	}
	rep, err = db.VerifyAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.FirstBroken != seqs[3] || !strings.Contains(rep.Problem, "deleted") || rep.Rows != 5 {
		t.Errorf("after deleting seq %d: %+v, want seq %d named", seqs[2], rep, seqs[3])
	}

	// Deleting the first row is caught too.
	if _, err := conn.Exec(ctx, `DELETE FROM audit_events WHERE seq = $1`, seqs[0]); err != nil {
		t.Fatal(err)
	}
	if rep, _ := db.VerifyAudit(ctx); rep.FirstBroken != seqs[1] {
		t.Errorf("after deleting the first row: %+v, want seq %d named", rep, seqs[1])
	}
}
