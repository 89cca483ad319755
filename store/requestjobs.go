package store

// The request lifecycle's jobs (KindExecuteRequest, KindExpireRequest in
// kinds.go). Their workers are registered by the process that works jobs
// (cmd/drbot); both the approval engine (which inserts them with a state
// change) and the action runner (which works them) know them through these
// neutral argument types.

// ExecuteRequestArgs runs an approved request (or resumes a running one).
// Resume is empty for the job inserted with the approval and a unique value
// for jobs inserted to resume requests left running by a stopped process.
type ExecuteRequestArgs struct {
	RequestID int64  `json:"request_id"`
	Resume    string `json:"resume,omitempty"`
}

// Kind implements JobArgs.
func (ExecuteRequestArgs) Kind() string { return KindExecuteRequest }

// ExpireRequestArgs expires a request that is still pending at its expiry time.
type ExpireRequestArgs struct {
	RequestID int64 `json:"request_id"`
}

// Kind implements JobArgs.
func (ExpireRequestArgs) Kind() string { return KindExpireRequest }
