package store

import "testing"

// The audit kinds of request moves are written both by name (approvals, the
// runner) and by RequestMovedKind (the store's default); they must agree, and
// the stored values never change.
func TestRequestMovedKind(t *testing.T) {
	for to, want := range map[RequestState]string{
		RequestApproved:  AuditRequestApproved,
		RequestDenied:    AuditRequestDenied,
		RequestCancelled: AuditRequestCancelled,
		RequestExpired:   AuditRequestExpired,
		RequestRunning:   AuditRequestRunning,
		RequestVerifying: AuditRequestVerifying,
		RequestFailed:    AuditRequestFailed,
		RequestSucceeded: "request.succeeded",
	} {
		if got := RequestMovedKind(to); got != want {
			t.Errorf("RequestMovedKind(%s) = %q, want %q", to, got, want)
		}
	}
	if AuditIncidentResolved != "incident.resolved" || AuditApprovalDenied != "approval.denied" {
		t.Errorf("stored audit kinds changed: %q, %q", AuditIncidentResolved, AuditApprovalDenied)
	}
}
