package usererr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/drbot-dev/drbot/internal/usererr"
)

type typed struct{ what string }

func (t *typed) Error() string      { return "internal: " + t.what }
func (t *typed) As(target any) bool { return usererr.Into(target, t.what) }

func TestAs(t *testing.T) {
	r, ok := usererr.As(fmt.Errorf("plan: %w", usererr.Refusef("no backup under %s", "s3://b/")))
	if !ok || r.Msg != "no backup under s3://b/" {
		t.Fatalf("As(wrapped Refusef) = %v, %v", r, ok)
	}
	r, ok = usererr.As(fmt.Errorf("verify: %w", &typed{what: "orders not found"}))
	if !ok || r.Msg != "orders not found" {
		t.Fatalf("As(typed) = %v, %v", r, ok)
	}
	var tp *typed
	if !errors.As(fmt.Errorf("x: %w", &typed{what: "y"}), &tp) {
		t.Fatal("a typed user-safe error lost its own type")
	}
	if _, ok := usererr.As(errors.New("dial tcp: connection refused")); ok {
		t.Fatal("an internal error became a refusal")
	}
	if _, ok := usererr.As(nil); ok {
		t.Fatal("nil is not a refusal")
	}
}
