package server

// LogOptions are the query of GET /v1/envs/{name}/logs.
type LogOptions struct {
	// Service limits the logs to one compose service (all when empty).
	Service string
	// Follow keeps streaming, picking up pods that start later, until the client goes away.
	Follow bool
	// Tail is the number of lines to show from the end of each pod's log; negative: all.
	Tail int64
	// Timestamps prefixes each line with its RFC 3339 time, as the kubelet writes it.
	Timestamps bool
}

// LogLine is one line of GET /v1/envs/{name}/logs's NDJSON stream: a line a pod's main container
// wrote, or (Error set, Line empty) why a pod's log could not be read.
type LogLine struct {
	// Service is the compose service name.
	Service string `json:"service"`
	// Pod is the pod's name: pods of one service are told apart by it.
	Pod   string `json:"pod"`
	Line  string `json:"line"`
	Error string `json:"error,omitempty"`
}
