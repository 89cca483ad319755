package testenv

import "syscall"

// motoSysProcAttr puts moto_server in its own process group and has the kernel
// kill it if the test binary dies without running its teardown.
func motoSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
