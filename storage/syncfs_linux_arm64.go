package storage

import "syscall"

const sysSyncfs = syscall.SYS_SYNCFS
