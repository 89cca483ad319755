package commands

import (
	"fmt"
	"testing"
)

type lowerRefusal struct{ msg string }

func (l *lowerRefusal) Error() string       { return "internal: " + l.msg }
func (l *lowerRefusal) UserMessage() string { return l.msg }

func TestAsRefusalAcceptsLowerLayerRefusals(t *testing.T) {
	err := fmt.Errorf("plan restore-db: %w", &lowerRefusal{msg: "no backup under s3://b/db/"})
	r, ok := AsRefusal(err)
	if !ok || r.Msg != "no backup under s3://b/db/" {
		t.Fatalf("AsRefusal = %v, %v", r, ok)
	}
	if _, ok := AsRefusal(fmt.Errorf("dial tcp: refused")); ok {
		t.Fatal("an internal error became a refusal")
	}
}
