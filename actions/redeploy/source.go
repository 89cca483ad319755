package redeploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/drbot-dev/drbot/internal/usererr"
	"github.com/drbot-dev/drbot/runbook"
)

// Limits on what a repository may hold: a checkout is read into memory, so
// a repository past them is refused rather than exhausting the bot.
const (
	maxFileSize  = 4 << 20  // one file
	maxTreeBytes = 64 << 20 // every file copied
	maxTreeFiles = 20000
)

// inProcessFile makes file:// (and local path) repositories be read by
// go-git's own upload-pack server in this process: go-git's default file
// transport runs the git-upload-pack binary with drbot's whole environment.
// go-git's own file loader opens a non-bare repository's work tree as if it
// were its .git folder (and finds no references): localLoader opens .git.
var inProcessFile = sync.OnceFunc(func() {
	client.InstallProtocol("file", server.NewServer(localLoader{}))
})

// localLoader opens a local repository, bare or not, for go-git's server.
type localLoader struct{}

func (localLoader) Load(ep *transport.Endpoint) (storer.Storer, error) {
	fs := osfs.New(ep.Path)
	if _, err := fs.Stat("config"); err == nil {
		return filesystem.NewStorage(fs, cache.NewObjectLRUDefault()), nil
	}
	if fi, err := fs.Stat(".git"); err == nil && fi.IsDir() {
		dot, err := fs.Chroot(".git")
		if err != nil {
			return nil, err
		}
		return filesystem.NewStorage(dot, cache.NewObjectLRUDefault()), nil
	}
	return nil, transport.ErrRepositoryNotFound
}

var shaRe = regexp.MustCompile(`^[0-9a-f]{40}$`)

// checkout is one commit of a source repository, its files in memory.
type checkout struct {
	Commit string             // the full commit SHA
	Ref    string             // the reference it was resolved from, e.g. refs/heads/main
	Files  filesys.FileSystem // the commit's tree (regular files only), rooted at /
	// RefHash is what the remote advertised for Ref: the commit, or an
	// annotated tag's own object.
	RefHash string
}

// auth checks the repository URL and returns HTTP basic auth from the
// source's token variable, nil when it names none. Only https://, http://
// and file:// (or a local path) repositories are read: ssh would use
// whatever keys and agent the bot's environment has. A token is never sent
// over plain http except to this machine, and is never logged or shown.
func auth(src runbook.GitSource) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(src.Repo)
	if err != nil {
		return nil, fmt.Errorf("kubernetes.source.repo %q is not a repository URL", redactURL(src.Repo))
	}
	switch ep.Protocol {
	case "https", "http", "file":
	default:
		return nil, fmt.Errorf("kubernetes.source.repo must be an https:// or file:// URL, not %s://", ep.Protocol)
	}
	if src.TokenEnv == "" {
		return nil, nil
	}
	if ep.Protocol == "http" && !loopback(ep.Host) {
		return nil, fmt.Errorf("kubernetes.source.repo is plain http://: the token in %s is only sent over https", src.TokenEnv)
	}
	tok := os.Getenv(src.TokenEnv)
	if tok == "" {
		return nil, fmt.Errorf("%s is not set or empty (kubernetes.source.token_env)", src.TokenEnv)
	}
	return &githttp.BasicAuth{Username: "drbot", Password: tok}, nil
}

// sourceErr turns a go-git error into a user-safe refusal that names the
// repository but never a credential (go-git errors may quote URLs).
func sourceErr(src runbook.GitSource, what string, err error) error {
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return refusef("could not %s %s: the repository refused the credentials (kubernetes.source.token_env)", what, redactURL(src.Repo))
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return refusef("could not %s %s: repository not found", what, redactURL(src.Repo))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s %s: %w", what, redactURL(src.Repo), err)
	}
	return &sourceError{what: what, repo: redactURL(src.Repo), err: err}
}

// sourceError is a failure to reach or read the repository: the user sees
// which repository, the log the cause.
type sourceError struct {
	what, repo string
	err        error
}

func (e *sourceError) Error() string { return fmt.Sprintf("%s %s: %v", e.what, e.repo, e.err) }
func (e *sourceError) Unwrap() error { return e.err }

// As makes the error a user-safe *usererr.Refusal to errors.As: it names
// the repository, not the cause (which may quote URLs; it goes to the log).
func (e *sourceError) As(target any) bool {
	return usererr.Into(target, fmt.Sprintf("could not %s %s: the repository did not answer or refused the request (details in drbot's log)", e.what, e.repo))
}

// redactURL drops any user info from a repository URL.
func redactURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
			return u[:i+3] + rest[at+1:]
		}
	}
	return u
}

// resolve returns the commit SHA the source's ref names on the remote, and
// the full reference name (a branch, then a tag; a 40-hex SHA names itself).
func resolve(ctx context.Context, src runbook.GitSource) (sha, ref string, err error) {
	inProcessFile()
	a, err := auth(src)
	if err != nil {
		return "", "", refusef("%s", err.Error())
	}
	if shaRe.MatchString(src.Ref) {
		return src.Ref, src.Ref, nil
	}
	rem := git.NewRemote(memory.NewStorage(), &gitconfig.RemoteConfig{Name: "origin", URLs: []string{src.Repo}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: a})
	if err != nil {
		return "", "", sourceErr(src, "list references of", err)
	}
	want := []plumbing.ReferenceName{plumbing.NewBranchReferenceName(src.Ref), plumbing.NewTagReferenceName(src.Ref), plumbing.ReferenceName(src.Ref)}
	for _, w := range want {
		for _, r := range refs {
			if r.Name() != w {
				continue
			}
			if r.Type() == plumbing.SymbolicReference {
				continue
			}
			return r.Hash().String(), string(w), nil
		}
	}
	return "", "", refusef("%s has no branch or tag %q (kubernetes.source.ref)", redactURL(src.Repo), src.Ref)
}

// fetch clones the source's ref into memory and returns its commit and
// tree. Nothing is written to disk and nothing in the repository runs.
func fetch(ctx context.Context, src runbook.GitSource) (*checkout, error) {
	sha, ref, err := resolve(ctx, src)
	if err != nil {
		return nil, err
	}
	co, err := fetchCommit(ctx, src, sha, ref)
	if err != nil {
		return nil, err
	}
	co.RefHash = sha
	return co, nil
}

// fetchCommit clones ref and checks that it holds commit sha.
func fetchCommit(ctx context.Context, src runbook.GitSource, sha, ref string) (*checkout, error) {
	inProcessFile()
	a, err := auth(src)
	if err != nil {
		return nil, refusef("%s", err.Error())
	}
	opts := &git.CloneOptions{URL: src.Repo, Auth: a, NoCheckout: true, Tags: git.NoTags}
	if ref != sha {
		opts.ReferenceName = plumbing.ReferenceName(ref)
		opts.SingleBranch = true
		if ep, err := transport.NewEndpoint(src.Repo); err == nil && ep.Protocol != "file" {
			opts.Depth = 1 // go-git's in-process file server cannot serve shallow clones
		}
	}
	repo, err := git.CloneContext(ctx, memory.NewStorage(), nil, opts)
	if err != nil {
		return nil, sourceErr(src, "fetch", err)
	}
	c, err := repo.CommitObject(plumbing.NewHash(sha))
	if err != nil && ref != sha {
		if tag, terr := repo.TagObject(plumbing.NewHash(sha)); terr == nil { // an annotated tag
			c, err = tag.Commit()
		}
	}
	if err != nil && ref == sha {
		return nil, refusef("%s has no commit %s reachable from its branches (kubernetes.source.ref)", redactURL(src.Repo), sha)
	}
	if err != nil {
		// The ref moved between listing and fetching: take what was
		// fetched (the plan pins the commit it built).
		head, herr := repo.Head()
		if herr != nil {
			return nil, sourceErr(src, "read commit "+short(sha)+" of", err)
		}
		if c, err = repo.CommitObject(head.Hash()); err != nil {
			return nil, sourceErr(src, "read commit of", err)
		}
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, sourceErr(src, "read the tree of", err)
	}
	fs, err := treeFS(tree)
	if err != nil {
		return nil, err
	}
	return &checkout{Commit: c.Hash.String(), Ref: ref, Files: fs}, nil
}

// treeFS copies the tree's regular files into an in-memory file system.
// Symbolic links and submodules are not copied: a link cannot point the
// build at the bot's own files, and nothing is fetched from elsewhere.
func treeFS(tree *object.Tree) (filesys.FileSystem, error) {
	fs := filesys.MakeFsInMemory()
	var total int64
	n := 0
	err := tree.Files().ForEach(func(f *object.File) error {
		if f.Mode != filemode.Regular && f.Mode != filemode.Executable {
			return nil
		}
		n++
		if n > maxTreeFiles {
			return refusef("the repository has more than %d files; redeploy reads at most that many", maxTreeFiles)
		}
		if f.Size > maxFileSize {
			return refusef("%s is %d bytes; redeploy reads files of at most %d bytes", f.Name, f.Size, maxFileSize)
		}
		total += f.Size
		if total > maxTreeBytes {
			return refusef("the repository holds more than %d bytes; redeploy reads at most that much", maxTreeBytes)
		}
		r, err := f.Reader()
		if err != nil {
			return fmt.Errorf("read %s: %w", f.Name, err)
		}
		b, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
		_ = r.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", f.Name, err)
		}
		name := path.Join("/", f.Name)
		if err := fs.MkdirAll(path.Dir(name)); err != nil {
			return err
		}
		return fs.WriteFile(name, b)
	})
	if err != nil {
		return nil, err
	}
	return fs, nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
