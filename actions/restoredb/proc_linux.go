package restoredb

import "syscall"

// childAttr has the kernel kill pg_restore/psql when drbot dies (kill -9),
// so a restart never races an orphaned restore.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
