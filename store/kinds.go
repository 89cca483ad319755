package store

// Audit kinds: the Kind of every AuditEvent drbot writes. The values are
// stored in the audit log and read back (timelines, exports, marks), so they
// never change; add new ones here.
const (
	// Incidents (the store and the incident lifecycle).
	AuditIncidentOpened     = "incident.opened"
	AuditIncidentChannelSet = "incident.channel_set"
	// AuditIncidentChannelMoved: the incident moved to a private channel.
	AuditIncidentChannelMoved = "incident.channel_moved"
	AuditIncidentSecurity     = "incident.security"
	// AuditIncidentScenarioMatched: the incident's title matched a scenario
	// of the runbook (written with incident.opened; its marks feed the header).
	AuditIncidentScenarioMatched = "incident.scenario_matched"

	// Channel setup steps.
	AuditIncidentTopicSet         = "incident.topic_set"
	AuditIncidentHeaderPosted     = "incident.header_posted"
	AuditIncidentOncallInvited    = "incident.oncall_invited"
	AuditIncidentChecklistPosted  = "incident.checklist_posted"
	AuditIncidentAnnounced        = "incident.announced"
	AuditIncidentHooksRun         = "incident.hooks_run"
	AuditIncidentSetupDone        = "incident.setup_done"
	AuditIncidentPagerDutyNoted   = "incident.pagerduty_noted"
	AuditIncidentResolutionPosted = "incident.resolution_posted"
	// AuditIncidentPostChecklistPosted: the post-incident checklist was posted.
	AuditIncidentPostChecklistPosted = "incident.post_checklist_posted"

	// Moving an incident to a private channel (/dr security).
	AuditIncidentSecureChannelCreated  = "incident.secure_channel_created"
	AuditIncidentSecureTopicSet        = "incident.secure_topic_set"
	AuditIncidentSecureInvited         = "incident.secure_invited"
	AuditIncidentSecureHeaderPosted    = "incident.secure_header_posted"
	AuditIncidentSecureChecklistPosted = "incident.secure_checklist_posted"
	AuditIncidentSecureMoved           = "incident.secure_moved"

	// Timers.
	AuditIncidentEscalationFired   = "incident.escalation_fired"
	AuditIncidentEscalationInvited = "incident.escalation_invited"
	AuditIncidentEscalationPosted  = "incident.escalation_posted"
	AuditIncidentEscalationNoted   = "incident.escalation_noted"
	AuditIncidentRTOWarning        = "incident.rto_warning"
	AuditIncidentRTOWarningPosted  = "incident.rto_warning_posted"

	// AuditIncidentPrefix + a PagerDuty event kind (triggered, acknowledged,
	// resolved, …) is the audit kind of a PagerDuty event applied to an incident.
	AuditIncidentPrefix   = "incident."
	AuditIncidentResolved = AuditIncidentPrefix + "resolved"
	// AuditPagerDutyIgnored: a PagerDuty event drbot did not act on.
	AuditPagerDutyIgnored = "pagerduty.ignored"

	AuditChecklistTicked   = "checklist.ticked"
	AuditChecklistUnticked = "checklist.unticked"

	// Requests. AuditRequestPrefix + a RequestState is the audit kind of a
	// request's move to that state (see RequestMovedKind).
	AuditRequestPrefix     = "request."
	AuditRequestCreated    = "request.created"
	AuditRequestApproved   = AuditRequestPrefix + string(RequestApproved)
	AuditRequestDenied     = AuditRequestPrefix + string(RequestDenied)
	AuditRequestCancelled  = AuditRequestPrefix + string(RequestCancelled)
	AuditRequestExpired    = AuditRequestPrefix + string(RequestExpired)
	AuditRequestRunning    = AuditRequestPrefix + string(RequestRunning)
	AuditRequestVerifying  = AuditRequestPrefix + string(RequestVerifying)
	AuditRequestFailed     = AuditRequestPrefix + string(RequestFailed)
	AuditRequestCardPosted = "request.card_posted"
	AuditRequestNote       = "request.note"
	AuditRequestLeaseLost  = "request.lease_lost"
	AuditPlanChanged       = "plan.changed"

	// Approvals: one person's decision (AuditApprovalPrefix + "approved"/"denied").
	AuditApprovalPrefix   = "approval."
	AuditApprovalApproved = AuditApprovalPrefix + "approved"
	AuditApprovalDenied   = AuditApprovalPrefix + "denied"

	// AuditVerifyRan: a /dr verify ran; its data is the report (check
	// names, ok, observed).
	AuditVerifyRan = "verify.ran"

	// Action steps, written by the runner's journal.
	AuditActionPrefix = "action."
	AuditStepStarted  = "step.started"
	AuditStepFinished = "step.finished"
)

// RequestMovedKind is the audit kind of a request's move to state to
// ("request.approved", "request.succeeded", …).
func RequestMovedKind(to RequestState) string { return AuditRequestPrefix + string(to) }

// Job kinds: the Kind of every durable job, which names the worker that runs
// it. They are stored with queued jobs, so they never change.
const (
	// The request lifecycle (see requestjobs.go).
	KindExecuteRequest = "request.execute"
	KindExpireRequest  = "request.expire"
	// KindResumeRequests resumes requests left running by a stopped process.
	KindResumeRequests = "request.resume"

	// The incident lifecycle.
	KindIncidentSetup    = "incident.setup"
	KindIncidentEscalate = "incident.escalate"
	KindIncidentRTO      = "incident.rto"
	KindIncidentHeader   = "incident.header"
	KindIncidentPost     = "incident.post"
	KindIncidentResolved = "incident.resolved"
	KindIncidentNote     = "incident.pagerduty_note"
	KindIncidentEvent    = "incident.event"
	KindIncidentSecure   = "incident.secure"

	// Housekeeping in the store.
	KindPruneDeliveries = "deliveries.prune"
	KindAuditVerify     = "audit.verify"
)

// KindIncidentHeaderTick refreshes an open incident's header every minute
// (its countdowns), snoozing itself until the incident resolves.
const KindIncidentHeaderTick = "incident.header_tick"

// QueueIncidentEvents is the job queue of incident.event jobs: recorded
// webhook events are applied one at a time, in the order they were recorded.
const QueueIncidentEvents = "incident_events"
