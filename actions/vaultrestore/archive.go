package vaultrestore

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Integrity is what CheckSnapshot found in a raft snapshot archive.
type Integrity struct {
	// SHA256 is the hex sha256 of the whole archive as read.
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
	// Files are the archive's files in order, with their sizes.
	Files []string `json:"files"`
	// Index and ID come from meta.json (the raft index and snapshot id).
	Index uint64 `json:"index,omitempty"`
	ID    string `json:"id,omitempty"`
}

// maxSumsSize bounds what is held in memory from an archive: SHA256SUMS,
// its sealed copy and meta.json are small; state.bin is only hashed.
const maxSumsSize = 1 << 20

// maxFileSize bounds one file of an archive uncompressed (a decompression
// bomb stops here).
const maxFileSize = 64 << 30

// CheckSnapshot reads a Vault raft snapshot archive (gzip'd tar: meta.json,
// state.bin, SHA256SUMS and SHA256SUMS.sealed, as `vault operator raft
// snapshot save` writes it) from r to its end and checks its integrity as
// Vault does before installing one: every file SHA256SUMS lists is there
// with that checksum, every data file is listed, and SHA256SUMS.sealed is
// present and not empty (its seal cannot be checked without the cluster's
// seal key). It streams: only the small files are held in memory.
func CheckSnapshot(r io.Reader) (Integrity, error) {
	whole := sha256.New()
	counted := &countWriter{}
	gz, err := gzip.NewReader(io.TeeReader(r, io.MultiWriter(whole, counted)))
	if err != nil {
		return Integrity{}, fmt.Errorf("not a snapshot archive (gzip): %w", err)
	}
	tr := tar.NewReader(gz)
	var in Integrity
	sums := map[string]string{} // file → hex sha256 as computed
	small := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Integrity{}, fmt.Errorf("snapshot archive unreadable after %s: %w", strings.Join(in.Files, ", "), err)
		}
		if h.Typeflag != tar.TypeReg {
			return Integrity{}, fmt.Errorf("snapshot archive holds %q, which is not a regular file", h.Name)
		}
		if slices.Contains(in.Files, h.Name) {
			return Integrity{}, fmt.Errorf("snapshot archive holds %q twice", h.Name)
		}
		in.Files = append(in.Files, h.Name)
		fh := sha256.New()
		w := io.Writer(fh)
		var buf *limitedBuffer
		if h.Name != "state.bin" {
			buf = &limitedBuffer{max: maxSumsSize}
			w = io.MultiWriter(fh, buf)
		}
		n, err := io.CopyN(w, tr, maxFileSize+1)
		if err != nil && !errors.Is(err, io.EOF) {
			return Integrity{}, fmt.Errorf("snapshot archive: read %s: %w", h.Name, err)
		}
		if n > maxFileSize {
			return Integrity{}, fmt.Errorf("snapshot archive: %s is larger than %s uncompressed", h.Name, "64 GiB")
		}
		sums[h.Name] = hex.EncodeToString(fh.Sum(nil))
		if buf != nil {
			small[h.Name] = buf.b
		}
	}
	if err := gz.Close(); err != nil {
		return Integrity{}, fmt.Errorf("snapshot archive: %w", err)
	}
	// Drain what follows the gzip stream so the archive's hash covers
	// every byte read.
	if _, err := io.Copy(io.Discard, io.TeeReader(r, io.MultiWriter(whole, counted))); err != nil {
		return Integrity{}, fmt.Errorf("snapshot archive: %w", err)
	}
	in.SHA256 = hex.EncodeToString(whole.Sum(nil))
	in.Bytes = counted.n

	listed, ok := small["SHA256SUMS"]
	if !ok {
		return Integrity{}, errors.New("snapshot archive has no SHA256SUMS")
	}
	if s, ok := small["SHA256SUMS.sealed"]; !ok || len(s) == 0 {
		return Integrity{}, errors.New("snapshot archive has no SHA256SUMS.sealed (an incomplete snapshot)")
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(listed)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			return Integrity{}, fmt.Errorf("SHA256SUMS line %q is malformed", line)
		}
		name = strings.TrimPrefix(name, "*")
		got, ok := sums[name]
		if !ok {
			return Integrity{}, fmt.Errorf("SHA256SUMS lists %s, which the archive lacks", name)
		}
		if !strings.EqualFold(got, sum) {
			return Integrity{}, fmt.Errorf("checksum mismatch for %s: SHA256SUMS says %s, the archive has %s", name, short(sum), short(got))
		}
		seen[name] = true
	}
	for _, need := range []string{"meta.json", "state.bin"} {
		if !seen[need] {
			return Integrity{}, fmt.Errorf("snapshot archive has no checksummed %s", need)
		}
	}
	for _, f := range in.Files {
		if !seen[f] && f != "SHA256SUMS" && f != "SHA256SUMS.sealed" {
			return Integrity{}, fmt.Errorf("snapshot archive holds %s, which SHA256SUMS does not list", f)
		}
	}
	var m struct {
		ID    string `json:"ID"`
		Index uint64 `json:"Index"`
	}
	if err := json.Unmarshal(small["meta.json"], &m); err != nil {
		return Integrity{}, fmt.Errorf("snapshot meta.json is not JSON: %w", err)
	}
	in.ID, in.Index = m.ID, m.Index
	return in, nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// limitedBuffer keeps up to max bytes and fails beyond.
type limitedBuffer struct {
	b   []byte
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if len(l.b)+len(p) > l.max {
		return 0, fmt.Errorf("file larger than %d bytes where a small one is expected", l.max)
	}
	l.b = append(l.b, p...)
	return len(p), nil
}
