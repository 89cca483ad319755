//go:build !linux

package restoredb

import "syscall"

func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
