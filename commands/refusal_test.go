package commands

import (
	"fmt"
	"testing"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/internal/usererr"
)

// lowerRefusal is a lower layer's typed user-safe error (like kube's
// NotFoundError): its Error is internal, its refusal message is for users.
type lowerRefusal struct{ msg string }

func (l *lowerRefusal) Error() string      { return "internal: " + l.msg }
func (l *lowerRefusal) As(target any) bool { return usererr.Into(target, l.msg) }

func TestAsRefusalAcceptsLowerLayerRefusals(t *testing.T) {
	err := fmt.Errorf("plan restore-db: %w", &lowerRefusal{msg: "no backup under s3://b/db/"})
	r, ok := AsRefusal(err)
	if !ok || r.Msg != "no backup under s3://b/db/" {
		t.Fatalf("AsRefusal = %v, %v", r, ok)
	}
	r, ok = AsRefusal(fmt.Errorf("plan restore-db: %w", actions.Refusef("no database %q", "x")))
	if !ok || r.Msg != `no database "x"` {
		t.Fatalf("AsRefusal(actions refusal) = %v, %v", r, ok)
	}
	if _, ok := AsRefusal(fmt.Errorf("dial tcp: refused")); ok {
		t.Fatal("an internal error became a refusal")
	}
}
