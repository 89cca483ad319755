// Package httpapi is drbot's HTTP server: health and readiness probes, Prometheus
// metrics, and the mount point for the Slack and PagerDuty endpoints. Every handler
// mounted through Handle is wrapped in the same metrics middleware and body limit.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/drbot-dev/drbot/internal/buildinfo"
)

// MaxBodyBytes is the largest request body any route accepts.
const MaxBodyBytes = 1 << 20

// DefaultShutdownTimeout is how long ListenAndServe waits for in-flight requests
// after its context is cancelled.
const DefaultShutdownTimeout = 10 * time.Second

// readyTimeout bounds one readiness check.
const readyTimeout = 3 * time.Second

// Options configures a Server.
type Options struct {
	// Ready reports whether the bot can serve (store reachable, config loaded).
	// nil means always ready.
	Ready func(ctx context.Context) error
	// Logger receives request errors and lifecycle lines; nil = slog.Default().
	Logger *slog.Logger
	// Metrics is the registry served on /metrics; the server registers its own
	// collectors (build info, HTTP, Go, process) on it. nil = a fresh registry.
	Metrics *prometheus.Registry
	// ShutdownTimeout bounds graceful shutdown; 0 = DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// Server is drbot's HTTP server.
type Server struct {
	ready    func(ctx context.Context) error
	log      *slog.Logger
	registry *prometheus.Registry
	mux      *http.ServeMux
	shutdown time.Duration

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	mu   sync.Mutex
	addr net.Addr
}

// New builds a Server with /healthz, /readyz and /metrics mounted. It panics only
// if the metrics registry already holds the server's collectors (a wiring bug).
func New(opts Options) *Server {
	s := &Server{
		ready:    opts.Ready,
		log:      opts.Logger,
		registry: opts.Metrics,
		mux:      http.NewServeMux(),
		shutdown: opts.ShutdownTimeout,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	if s.shutdown <= 0 {
		s.shutdown = DefaultShutdownTimeout
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "drbot_http_requests_total",
		Help: "HTTP requests served, by registered route pattern (or unmatched), method (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS or other) and status code (or other).",
	}, []string{"route", "method", "code"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "drbot_http_request_duration_seconds",
		Help:    "Time to serve HTTP requests, by registered route pattern.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route"})
	bi := buildinfo.Get()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "drbot_build_info",
		Help: "A metric with a constant 1 value labelled by the running drbot build.",
	}, []string{"version", "commit", "goversion"})
	build.WithLabelValues(bi.Version, bi.Commit, bi.GoVersion).Set(1)

	s.registry.MustRegister(s.requests, s.duration, build)
	// Go and process collectors may already be registered by the caller; that is fine.
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := s.registry.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(fmt.Sprintf("httpapi: register collector: %v", err))
			}
		}
	}

	s.Handle("GET /healthz", http.HandlerFunc(s.healthz))
	s.Handle("GET /readyz", http.HandlerFunc(s.readyz))
	s.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
	}))
	return s
}

// Handle mounts h at pattern (net/http ServeMux syntax, e.g. "POST /slack/commands"),
// wrapped in the metrics middleware and the request body limit. The metrics label
// is the pattern itself, never the raw request path.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.instrument(pattern, h))
}

// Handler returns the server's root handler. Requests matching no route get 404
// and are counted under route "unmatched".
func (s *Server) Handler() http.Handler {
	unmatched := s.instrument("unmatched", http.NotFoundHandler())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := s.mux.Handler(r); pattern == "" {
			unmatched.ServeHTTP(w, r)
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

// Addr returns the address the server listens on, or nil before it listens.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// ListenAndServe listens on addr (":0" picks a free port; see Addr) and serves
// until ctx is cancelled. Then it stops accepting connections and waits up to the
// shutdown timeout for in-flight requests. It returns nil after a clean shutdown.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is ListenAndServe on an existing listener, which it closes.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()

	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.log.Info("http server listening", "addr", ln.Addr().String())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("http server on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.log.Info("http server shutting down", "addr", ln.Addr().String(), "timeout", s.shutdown)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdown)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server on %s: %w", ln.Addr(), err)
	}
	if shutErr != nil {
		return fmt.Errorf("http server on %s: graceful shutdown did not finish within %s: %w", ln.Addr(), s.shutdown, shutErr)
	}
	s.log.Info("http server stopped", "addr", ln.Addr().String())
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			// The reason is for operators probing the pod: keep it short and
			// never echo the error text, which may carry connection strings.
			s.log.Warn("not ready", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + reason(err) + "\n"))
			return
		}
	}
	_, _ = w.Write([]byte("ready\n"))
}

// NotReadyError is an error a Ready func may return to publish a short,
// non-secret reason on /readyz (for example "store unreachable").
type NotReadyError struct {
	Reason string
	Err    error
}

func (e *NotReadyError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *NotReadyError) Unwrap() error { return e.Err }

func reason(err error) string {
	var nr *NotReadyError
	if errors.As(err, &nr) && nr.Reason != "" {
		return nr.Reason
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "readiness check timed out"
	}
	return "dependency check failed (see drbot's log)"
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// methodLabel maps a request's method onto a fixed set: anyone can send any
// token as a method, and a label per distinct value would let unauthenticated
// requests grow /metrics without bound.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodDelete, http.MethodPatch, http.MethodOptions:
		return m
	}
	return "other"
}

// codeLabel is the status code, or "other" outside 100–599: codes come from our
// own handlers, so this bounds the label at a few values in practice and at
// 500 at worst.
func codeLabel(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code)
}

// instrument wraps h for route, a registered pattern or "unmatched": every
// label it records comes from a fixed set, never from the request.
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			if p := recover(); p != nil {
				if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(p)
				}
				s.log.Error("http handler panicked", "route", route, "method", methodLabel(r.Method), "panic", fmt.Sprint(p))
				if sw.code == 0 {
					http.Error(sw, "internal error", http.StatusInternalServerError)
				}
				code = http.StatusInternalServerError
			}
			s.requests.WithLabelValues(route, methodLabel(r.Method), codeLabel(code)).Inc()
			s.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		h.ServeHTTP(sw, r)
	})
}
