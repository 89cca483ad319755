// Package incident is drbot's incident lifecycle: it records PagerDuty
// incident events (ingest), sets up each incident's channel (name, topic,
// invites, header, checklist, announcement), runs its escalation and RTO
// timers, keeps the header current, posts through a retrying outbox, runs the
// incident commands (/dr ack, resolve, security, status, timeline; it
// implements commands.IncidentOps) and exports the timeline as a Markdown
// post-mortem. Everything slow runs as durable River jobs (RegisterWorkers).
// It talks to chat only through chat.Adapter and to PagerDuty through
// PagerDutyAPI; bot/pagerduty and the shell hand it Events.
package incident
