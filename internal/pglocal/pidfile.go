package pglocal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pidFile is what we need from a postmaster.pid: see PostgreSQL's
// src/include/utils/pidfile.h for the line layout.
type pidFile struct {
	pid       int
	port      int
	socketDir string // first unix_socket_directories entry, "" when none
	shmID     int    // -1 when unknown
}

// readPidFile parses pgdata/postmaster.pid; os.ErrNotExist when absent.
func readPidFile(path string) (pidFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return pidFile{}, err
	}
	lines := strings.Split(string(b), "\n")
	pf := pidFile{shmID: -1}
	pf.pid, err = strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil {
		return pidFile{}, fmt.Errorf("%s: first line %q is not a process id", path, lines[0])
	}
	if len(lines) > 3 {
		pf.port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	if len(lines) > 4 {
		pf.socketDir = strings.TrimSpace(lines[4])
	}
	if len(lines) > 6 {
		if f := strings.Fields(lines[6]); len(f) == 2 {
			if id, err := strconv.Atoi(f[1]); err == nil {
				pf.shmID = id
			}
		}
	}
	return pf, nil
}

// processState returns the one-letter state of pid from /proc ("" if unknown).
func processState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name is in parentheses and may itself hold spaces or ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return ""
	}
	return string(b[i+2])
}

// processRunning reports whether pid is alive and not a zombie (a killed process
// nobody reaped: common when the parent is a container's PID 1).
func processRunning(pid int) bool {
	return processAlive(pid) && processState(pid) != "Z"
}

// waitSharedMemoryReleased waits until no process is attached to the server's
// old System V shared memory segment (the interlock PostgreSQL itself relies on),
// then removes the segment. It returns an error when backends of the old server
// still hold it after the timeout.
func waitSharedMemoryReleased(shmID int, timeout time.Duration) error {
	if shmID < 0 {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		var desc unix.SysvShmDesc
		_, err := unix.SysvShmCtl(shmID, unix.IPC_STAT, &desc)
		if err != nil {
			if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EIDRM) {
				return nil // gone already
			}
			// EACCES and the like: we cannot tell; let PostgreSQL decide.
			return nil
		}
		if desc.Nattch == 0 {
			_, _ = unix.SysvShmCtl(shmID, unix.IPC_RMID, nil)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d processes of a previous PostgreSQL server are still attached to its shared memory (segment id %d): stop them (ps -u postgres) and try again", desc.Nattch, shmID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
