//go:build !linux

package testenv

import "syscall"

// motoSysProcAttr puts moto_server in its own process group.
func motoSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
