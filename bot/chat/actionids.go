package chat

// Every interactive element's action id, in one place (house style 1). Adapters
// route clicks by these values; nothing else may invent one.
const (
	ActionApprove   = "dr_approve"
	ActionDeny      = "dr_deny"
	ActionCancel    = "dr_cancel"
	ActionChecklist = "dr_checklist"
)
