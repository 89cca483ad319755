// Package fakevault is a stateful fake of the parts of HashiCorp Vault's HTTP
// API that drbot uses, served over real HTTP (httptest) so that
// github.com/hashicorp/vault/api talks to it exactly as it talks to Vault.
//
// It keeps a cluster's raft state — its KV secrets (path → key → value), its
// raft index — and serves:
//
//   - GET /v1/sys/health with Vault's status codes (200 active, 429 standby,
//     503 sealed, 501 not initialized; overridable with the *code query
//     parameters the client sends) and its JSON;
//   - GET /v1/sys/storage/raft/snapshot: the current state as a snapshot
//     archive shaped like Vault's (gzip'd tar of meta.json, state.bin,
//     SHA256SUMS and SHA256SUMS.sealed, the last one written last);
//   - POST /v1/sys/storage/raft/snapshot-force (and snapshot): replaces the
//     state from the body, refusing an archive whose checksums do not match
//     with Vault's error shape ({"errors":[…]}, 500);
//   - LIST (or GET ?list=true) /v1/secret/metadata/<path> on KV v2 mounts and
//     /v1/<mount>/<path> on KV v1 mounts: {"data":{"keys":[…]}}, or 404
//     {"errors":[]} when nothing is there;
//   - GET /v1/sys/internal/ui/mounts/<path>: the mount and its KV version, as
//     the vault CLI's `kv` commands ask it;
//   - GET /v1/auth/token/lookup-self: the token's (fixed) description.
//
// Every endpoint but health needs the X-Vault-Token header to equal the
// server's token (403 {"errors":["permission denied"]} otherwise); a sealed
// server answers 503 {"errors":["Vault is sealed"]}. Tests seal and unseal
// it, set secrets, take and install snapshots, and inject failures. It is
// safe for concurrent use.
package fakevault

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultToken is the token a New server accepts.
const DefaultToken = "hvs.fake-root-token" //nolint:gosec // the fake's own token

// Version is the Vault version the fake reports.
const Version = "1.18.3"

// Server is a fake Vault cluster.
type Server struct {
	srv *httptest.Server

	mu          sync.Mutex
	token       string
	initialized bool
	sealed      bool
	standby     bool
	mounts      map[string]int // mount path without slash → KV version (1 or 2)
	secrets     map[string]map[string]string
	index       uint64
	fail        map[string][]failure // endpoint → queued failures
	calls       []Call
	restores    int
	// hold, when set, blocks snapshot-force until it is closed (tests
	// kill a process mid-restore); entered is closed when one is held.
	hold    chan struct{}
	entered chan struct{}
	// drop: the next snapshot-force installs the snapshot, then drops
	// the connection without answering.
	drop bool
}

type failure struct {
	status int
	msg    string
}

// Call is one request the server received (the token is never recorded).
type Call struct {
	Method string
	Path   string
	Status int
}

// Endpoints for Fail.
const (
	EndpointHealth   = "health"
	EndpointSnapshot = "snapshot"       // GET sys/storage/raft/snapshot
	EndpointRestore  = "snapshot-force" // POST sys/storage/raft/snapshot[-force]
	EndpointList     = "list"           // KV listing
)

// New starts a fake Vault: initialized, unsealed, active, with a KV v2 mount
// at secret/ and no secrets. Close it when done.
func New() *Server {
	s := &Server{
		token: DefaultToken, initialized: true,
		mounts:  map[string]int{"secret": 2},
		secrets: map[string]map[string]string{},
		index:   1,
		fail:    map[string][]failure{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the server's address (VAULT_ADDR).
func (s *Server) URL() string { return s.srv.URL }

// Token is the token the server accepts.
func (s *Server) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// SetToken replaces the token the server accepts (a rotated or revoked token).
func (s *Server) SetToken(token string) { s.mu.Lock(); s.token = token; s.mu.Unlock() }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Seal seals the server (health 503, every other call 503).
func (s *Server) Seal() { s.mu.Lock(); s.sealed = true; s.mu.Unlock() }

// Unseal unseals it.
func (s *Server) Unseal() { s.mu.Lock(); s.sealed = false; s.mu.Unlock() }

// SetStandby makes the node a standby (health 429) or active again.
func (s *Server) SetStandby(on bool) { s.mu.Lock(); s.standby = on; s.mu.Unlock() }

// SetInitialized sets whether the cluster is initialized (health 501 when not).
func (s *Server) SetInitialized(on bool) { s.mu.Lock(); s.initialized = on; s.mu.Unlock() }

// Mount adds (or changes) a KV mount of version 1 or 2.
func (s *Server) Mount(path string, version int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mounts[strings.Trim(path, "/")] = version
}

// Put sets a secret at path (mount included, e.g. secret/prod/db) with data.
func (s *Server) Put(path string, data map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[strings.Trim(path, "/")] = maps.Clone(data)
	s.index++
}

// Delete removes the secrets at path and below it.
func (s *Server) Delete(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	path = strings.Trim(path, "/")
	for p := range s.secrets {
		if p == path || strings.HasPrefix(p, path+"/") {
			delete(s.secrets, p)
		}
	}
	s.index++
}

// Secrets returns a copy of every secret by path.
func (s *Server) Secrets() map[string]map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]string, len(s.secrets))
	for p, d := range s.secrets {
		out[p] = maps.Clone(d)
	}
	return out
}

// Restores counts the snapshots installed through the API.
func (s *Server) Restores() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restores
}

// Calls returns the requests received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Fail makes the next call of endpoint answer status with Vault's error
// shape and msg (queued: one failure per call).
func (s *Server) Fail(endpoint string, status int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[endpoint] = append(s.fail[endpoint], failure{status, msg})
}

// HoldRestore makes snapshot-force block, after reading the body and before
// installing it, until release is called; entered is closed when the first
// restore is held. A held request whose client goes away (a killed process)
// installs nothing.
func (s *Server) HoldRestore() (entered <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, in := make(chan struct{}), make(chan struct{})
	s.hold, s.entered = ch, in
	var once sync.Once
	return in, func() {
		once.Do(func() {
			s.mu.Lock()
			s.hold = nil
			s.mu.Unlock()
			close(ch)
		})
	}
}

// StatusClientGone is the status recorded for a held restore whose client
// went away (nginx's 499): nothing was installed.
const StatusClientGone = 499

// DropRestore makes the next snapshot-force install the snapshot and then
// drop the connection without answering (the client cannot tell whether
// Vault installed it).
func (s *Server) DropRestore() { s.mu.Lock(); s.drop = true; s.mu.Unlock() }

// state is what a snapshot holds.
type state struct {
	Index   uint64                       `json:"index"`
	Mounts  map[string]int               `json:"mounts"`
	Secrets map[string]map[string]string `json:"secrets"`
}

// meta is the snapshot's meta.json, shaped like raft's SnapshotMeta.
type meta struct {
	Version int    `json:"Version"`
	ID      string `json:"ID"`
	Index   uint64 `json:"Index"`
	Term    uint64 `json:"Term"`
	Size    int64  `json:"Size"`
}

// Snapshot returns the current state as a snapshot archive, as GET
// sys/storage/raft/snapshot does.
func (s *Server) Snapshot() []byte {
	s.mu.Lock()
	st := state{Index: s.index, Mounts: maps.Clone(s.mounts), Secrets: map[string]map[string]string{}}
	for p, d := range s.secrets {
		st.Secrets[p] = maps.Clone(d)
	}
	s.mu.Unlock()
	return Archive(st.Index, st.Mounts, st.Secrets)
}

// Archive builds a snapshot archive of the given state: gzip'd tar of
// meta.json, state.bin, SHA256SUMS (sha256 of the first two, as
// sha256sum(1) prints them) and SHA256SUMS.sealed.
func Archive(index uint64, mounts map[string]int, secrets map[string]map[string]string) []byte {
	stateBin, _ := json.Marshal(state{Index: index, Mounts: mounts, Secrets: secrets})
	metaJSON, _ := json.Marshal(meta{Version: 1, ID: fmt.Sprintf("2-%d-%d", index, time.Now().UnixMilli()), Index: index, Term: 2, Size: int64(len(stateBin))})
	sums := sumLine(metaJSON, "meta.json") + sumLine(stateBin, "state.bin")
	return build([]file{{"meta.json", metaJSON}, {"state.bin", stateBin}, {"SHA256SUMS", []byte(sums)}, {"SHA256SUMS.sealed", sealed([]byte(sums))}})
}

type file struct {
	name string
	body []byte
}

// Build writes files as a gzip'd tar, in order (tests craft corrupt archives
// with it).
func Build(files map[string][]byte, order ...string) []byte {
	var fs []file
	for _, n := range order {
		fs = append(fs, file{n, files[n]})
	}
	return build(fs)
}

func build(files []file) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		_ = tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o600, Size: int64(len(f.body)), ModTime: time.Unix(0, 0)})
		_, _ = tw.Write(f.body)
	}
	_ = tw.Close()
	_ = gz.Close()
	return buf.Bytes()
}

func sumLine(b []byte, name string) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]) + "  " + name + "\n"
}

// sealed stands in for the seal's encryption of SHA256SUMS.
func sealed(sums []byte) []byte {
	h := sha256.Sum256(append([]byte("fake-seal:"), sums...))
	return []byte("sealed:" + hex.EncodeToString(h[:]))
}

// readArchive reads and checks a snapshot archive the way Vault does on
// restore: every file listed in SHA256SUMS present with its checksum, the
// sealed sums matching.
func readArchive(b []byte) (state, error) {
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return state{}, fmt.Errorf("failed to read snapshot file: failed to open the snapshot archive: %w", err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return state{}, fmt.Errorf("failed to read snapshot file: failed to read the snapshot archive: %w", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return state{}, fmt.Errorf("failed to read snapshot file: failed to read %s: %w", h.Name, err)
		}
		files[h.Name] = body
	}
	sums, ok := files["SHA256SUMS"]
	if !ok {
		return state{}, errors.New("failed to read snapshot file: missing SHA256SUMS")
	}
	if !bytes.Equal(files["SHA256SUMS.sealed"], sealed(sums)) {
		return state{}, errors.New("failed to verify snapshot checksums: sealed hash does not match")
	}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			return state{}, errors.New("failed to read snapshot file: malformed SHA256SUMS")
		}
		body, ok := files[name]
		if !ok {
			return state{}, fmt.Errorf("failed to read snapshot file: missing %s", name)
		}
		h := sha256.Sum256(body)
		if hex.EncodeToString(h[:]) != sum {
			return state{}, fmt.Errorf("failed to verify snapshot checksums: %s: checksum mismatch", name)
		}
	}
	var st state
	if err := json.Unmarshal(files["state.bin"], &st); err != nil {
		return state{}, fmt.Errorf("failed to restore snapshot: decode state: %w", err)
	}
	return st, nil
}

// Install replaces the state with the snapshot b (as snapshot-force does).
func (s *Server) Install(b []byte) error {
	st, err := readArchive(b)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index = st.Index
	if st.Mounts != nil {
		s.mounts = st.Mounts
	}
	s.secrets = st.Secrets
	if s.secrets == nil {
		s.secrets = map[string]map[string]string{}
	}
	s.restores++
	return nil
}

func (s *Server) record(r *http.Request, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Status: status})
}

func (s *Server) writeErr(rw http.ResponseWriter, r *http.Request, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	s.writeJSON(rw, r, status, map[string]any{"errors": msgs})
}

func (s *Server) writeJSON(rw http.ResponseWriter, r *http.Request, status int, v any) {
	s.record(r, status)
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(v)
}

// injected pops a queued failure of endpoint.
func (s *Server) injected(endpoint string) (failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.fail[endpoint]
	if len(q) == 0 {
		return failure{}, false
	}
	s.fail[endpoint] = q[1:]
	return q[0], true
}

func (s *Server) serve(rw http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/v1/sys/health" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		s.health(rw, r)
		return
	}
	s.mu.Lock()
	tokenOK := r.Header.Get("X-Vault-Token") == s.token
	sealed := s.sealed
	s.mu.Unlock()
	if sealed {
		s.writeErr(rw, r, http.StatusServiceUnavailable, "Vault is sealed")
		return
	}
	if !tokenOK {
		s.writeErr(rw, r, http.StatusForbidden, "permission denied")
		return
	}
	switch {
	case p == "/v1/sys/storage/raft/snapshot" && r.Method == http.MethodGet:
		s.snapshot(rw, r)
	case (p == "/v1/sys/storage/raft/snapshot-force" || p == "/v1/sys/storage/raft/snapshot") && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		s.restore(rw, r)
	case p == "/v1/auth/token/lookup-self" && r.Method == http.MethodGet:
		s.writeJSON(rw, r, http.StatusOK, map[string]any{"data": map[string]any{
			"accessor": "fake-accessor", "display_name": "token", "policies": []string{"default", "snapshot-restore"},
			"ttl": 3600, "renewable": true, "type": "service",
		}})
	case strings.HasPrefix(p, "/v1/sys/internal/ui/mounts/") && r.Method == http.MethodGet:
		s.mountInfo(rw, r, strings.TrimPrefix(p, "/v1/sys/internal/ui/mounts/"))
	case r.Method == "LIST" || (r.Method == http.MethodGet && r.URL.Query().Get("list") == "true"):
		s.list(rw, r, strings.TrimPrefix(p, "/v1/"))
	default:
		s.writeErr(rw, r, http.StatusNotFound)
	}
}

func (s *Server) health(rw http.ResponseWriter, r *http.Request) {
	if f, ok := s.injected(EndpointHealth); ok {
		s.writeErr(rw, r, f.status, f.msg)
		return
	}
	s.mu.Lock()
	init, sealed, standby := s.initialized, s.sealed, s.standby
	s.mu.Unlock()
	q := r.URL.Query()
	code := func(param string, def int) int {
		var n int
		if v := q.Get(param); v != "" {
			if _, err := fmt.Sscanf(v, "%d", &n); err == nil {
				return n
			}
		}
		return def
	}
	var status int
	switch {
	case !init:
		status = code("uninitcode", http.StatusNotImplemented)
	case sealed:
		status = code("sealedcode", http.StatusServiceUnavailable)
	case standby:
		if q.Get("standbyok") == "true" {
			status = code("activecode", http.StatusOK)
		} else {
			status = code("standbycode", http.StatusTooManyRequests)
		}
	default:
		status = code("activecode", http.StatusOK)
	}
	body := map[string]any{
		"initialized": init, "sealed": sealed, "standby": standby, "performance_standby": false,
		"replication_performance_mode": "disabled", "replication_dr_mode": "disabled",
		"server_time_utc": time.Now().Unix(), "version": Version, "enterprise": false,
		"echo_duration_ms": 0, "clock_skew_ms": 0, "replication_primary_canary_age_ms": 0,
		"removed_from_cluster": false, "ha_connection_healthy": true,
	}
	if init {
		body["cluster_name"] = "vault-cluster-fake"
		body["cluster_id"] = "6a1c0a6e-0000-4000-8000-fa4e7a017000"
	}
	if r.Method == http.MethodHead {
		s.record(r, status)
		rw.WriteHeader(status)
		return
	}
	s.writeJSON(rw, r, status, body)
}

func (s *Server) snapshot(rw http.ResponseWriter, r *http.Request) {
	if f, ok := s.injected(EndpointSnapshot); ok {
		s.writeErr(rw, r, f.status, f.msg)
		return
	}
	b := s.Snapshot()
	s.record(r, http.StatusOK)
	rw.Header().Set("Content-Type", "application/gzip")
	rw.WriteHeader(http.StatusOK)
	_, _ = rw.Write(b)
}

func (s *Server) restore(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 256<<20))
	if err != nil {
		s.writeErr(rw, r, http.StatusBadRequest, "failed to read snapshot file: "+err.Error())
		return
	}
	if f, ok := s.injected(EndpointRestore); ok {
		s.writeErr(rw, r, f.status, f.msg)
		return
	}
	s.mu.Lock()
	hold, entered := s.hold, s.entered
	s.entered = nil
	s.mu.Unlock()
	if entered != nil {
		close(entered)
	}
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			s.record(r, StatusClientGone)
			return
		}
	}
	if err := s.Install(body); err != nil {
		s.writeErr(rw, r, http.StatusInternalServerError, err.Error())
		return
	}
	s.mu.Lock()
	drop := s.drop
	s.drop = false
	s.mu.Unlock()
	if hj, ok := rw.(http.Hijacker); drop && ok {
		if conn, _, err := hj.Hijack(); err == nil {
			s.record(r, 0)
			_ = conn.Close()
			return
		}
	}
	s.record(r, http.StatusNoContent)
	rw.WriteHeader(http.StatusNoContent)
}

// mountOf splits a path into its mount and the rest.
func (s *Server) mountOf(path string) (mount string, version int, rest string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	path = strings.Trim(path, "/")
	best := ""
	for m := range s.mounts {
		if (path == m || strings.HasPrefix(path, m+"/")) && len(m) > len(best) {
			best = m
		}
	}
	if best == "" {
		return "", 0, "", false
	}
	return best, s.mounts[best], strings.Trim(strings.TrimPrefix(path, best), "/"), true
}

func (s *Server) mountInfo(rw http.ResponseWriter, r *http.Request, path string) {
	m, v, _, ok := s.mountOf(path)
	if !ok {
		s.writeErr(rw, r, http.StatusForbidden, fmt.Sprintf("preflight capability check returned 403, please ensure client's policies grant access to path %q", path+"/"))
		return
	}
	s.writeJSON(rw, r, http.StatusOK, map[string]any{"data": map[string]any{
		"path": m + "/", "type": "kv", "options": map[string]string{"version": fmt.Sprint(v)},
	}})
}

func (s *Server) list(rw http.ResponseWriter, r *http.Request, path string) {
	if f, ok := s.injected(EndpointList); ok {
		s.writeErr(rw, r, f.status, f.msg)
		return
	}
	m, v, rest, ok := s.mountOf(path)
	if !ok {
		s.writeErr(rw, r, http.StatusNotFound)
		return
	}
	if v == 2 {
		sub, found := strings.CutPrefix(rest, "metadata")
		if !found || (sub != "" && !strings.HasPrefix(sub, "/")) {
			s.writeErr(rw, r, http.StatusNotFound)
			return
		}
		rest = strings.Trim(sub, "/")
	}
	prefix := m + "/"
	if rest != "" {
		prefix += rest + "/"
	}
	keys := map[string]bool{}
	s.mu.Lock()
	for p := range s.secrets {
		tail, ok := strings.CutPrefix(p, prefix)
		if !ok || tail == "" {
			continue
		}
		if first, _, deeper := strings.Cut(tail, "/"); deeper {
			keys[first+"/"] = true
		} else {
			keys[first] = true
		}
	}
	s.mu.Unlock()
	if len(keys) == 0 {
		s.writeErr(rw, r, http.StatusNotFound)
		return
	}
	s.writeJSON(rw, r, http.StatusOK, map[string]any{"data": map[string]any{"keys": slices.Sorted(maps.Keys(keys))}})
}
