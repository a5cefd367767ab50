//! The WASI preview1 functions a proxy-wasm module may import, answered the
//! way proxy-wasm-cpp-host answers them: stdout and stderr become log lines
//! (info and error), there are no arguments, environment or files, time comes
//! from the virtual clock, and randomness is a deterministic generator.
//! `proc_exit` traps the VM.
//!
//! Every function is registered under both `wasi_snapshot_preview1` and
//! `wasi_unstable`.

use crate::imports::{read, write, write_u32, write_u64};
use crate::log::LogLevel;
use crate::vm::VmState;
use wasmtime::{Caller, Linker};

type Ctx<'a> = Caller<'a, VmState>;
type R = wasmtime::Result<u32>;

const SUCCESS: u32 = 0;
const EBADF: u32 = 8;
const EFAULT: u32 = 21;
const ENOTDIR: u32 = 20;
const ENOENT: u32 = 44;
const ENOSYS: u32 = 52;
const ENOTSUP: u32 = 58;

fn is_stdio(fd: u32) -> bool {
    fd == 1 || fd == 2
}

/// Gather an iovec list and log it: stdout at info, stderr at error, one
/// trailing newline removed (cpp-host `writevImpl`).
fn write_stdio(c: &mut Ctx<'_>, fd: u32, iovs: u32, iovs_len: u32) -> Result<u32, u32> {
    let level = match fd {
        1 => LogLevel::Info,
        2 => LogLevel::Error,
        _ => return Err(EBADF),
    };
    let mut text = Vec::new();
    for i in 0..iovs_len {
        let at = iovs
            .checked_add(i.checked_mul(8).ok_or(EFAULT)?)
            .ok_or(EFAULT)?;
        let iov = read(c, at, 8).ok_or(EFAULT)?;
        let buf = u32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
        let len = u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
        if len != 0 {
            text.extend_from_slice(&read(c, buf, len).ok_or(EFAULT)?);
        }
    }
    let written = text.len() as u32;
    if !text.is_empty() {
        if text.last() == Some(&b'\n') {
            text.pop();
        }
        c.data_mut()
            .log(level, String::from_utf8_lossy(&text).into_owned());
    }
    Ok(written)
}

/// Register the WASI functions under `module`.
fn add_module(linker: &mut Linker<VmState>, m: &str) -> wasmtime::Result<()> {
    linker.func_wrap(m, "args_get", |_c: Ctx<'_>, _argv: u32, _buf: u32| -> R {
        Ok(SUCCESS)
    })?;
    linker.func_wrap(
        m,
        "args_sizes_get",
        |mut c: Ctx<'_>, argc: u32, size: u32| -> R {
            Ok(
                if write_u32(&mut c, argc, 0) && write_u32(&mut c, size, 0) {
                    SUCCESS
                } else {
                    EFAULT
                },
            )
        },
    )?;
    linker.func_wrap(
        m,
        "environ_get",
        |_c: Ctx<'_>, _environ: u32, _buf: u32| -> R { Ok(SUCCESS) },
    )?;
    linker.func_wrap(
        m,
        "environ_sizes_get",
        |mut c: Ctx<'_>, count: u32, size: u32| -> R {
            Ok(
                if write_u32(&mut c, count, 0) && write_u32(&mut c, size, 0) {
                    SUCCESS
                } else {
                    EFAULT
                },
            )
        },
    )?;
    linker.func_wrap(
        m,
        "clock_time_get",
        |mut c: Ctx<'_>, id: u32, _precision: u64, ret: u32| -> R {
            let clock = &c.data().shared.clock;
            let now = match id {
                0 => clock.now_ns(),
                1 => clock.elapsed_ns(),
                _ => return Ok(ENOTSUP),
            };
            Ok(if write_u64(&mut c, ret, now) {
                SUCCESS
            } else {
                EFAULT
            })
        },
    )?;
    linker.func_wrap(
        m,
        "clock_res_get",
        |mut c: Ctx<'_>, id: u32, ret: u32| -> R {
            if id > 1 {
                return Ok(ENOTSUP);
            }
            Ok(if write_u64(&mut c, ret, 1) {
                SUCCESS
            } else {
                EFAULT
            })
        },
    )?;
    linker.func_wrap(
        m,
        "fd_write",
        |mut c: Ctx<'_>, fd: u32, iovs: u32, iovs_len: u32, ret: u32| -> R {
            match write_stdio(&mut c, fd, iovs, iovs_len) {
                Ok(n) => Ok(if write_u32(&mut c, ret, n) {
                    SUCCESS
                } else {
                    EFAULT
                }),
                Err(e) => Ok(e),
            }
        },
    )?;
    linker.func_wrap(
        m,
        "fd_pwrite",
        |mut c: Ctx<'_>, fd: u32, iovs: u32, iovs_len: u32, _offset: u64, ret: u32| -> R {
            match write_stdio(&mut c, fd, iovs, iovs_len) {
                Ok(n) => Ok(if write_u32(&mut c, ret, n) {
                    SUCCESS
                } else {
                    EFAULT
                }),
                Err(e) => Ok(e),
            }
        },
    )?;
    linker.func_wrap(
        m,
        "fd_read",
        |_c: Ctx<'_>, _fd: u32, _iovs: u32, _len: u32, _ret: u32| -> R { Ok(ENOSYS) },
    )?;
    linker.func_wrap(
        m,
        "fd_pread",
        |_c: Ctx<'_>, _fd: u32, _iovs: u32, _len: u32, _off: u64, _ret: u32| -> R { Ok(ENOSYS) },
    )?;
    // cpp-host answers success without writing the new offset.
    linker.func_wrap(
        m,
        "fd_seek",
        |_c: Ctx<'_>, _fd: u32, _offset: i64, _whence: u32, _ret: u32| -> R { Ok(SUCCESS) },
    )?;
    linker.func_wrap(m, "fd_close", |_c: Ctx<'_>, _fd: u32| -> R { Ok(SUCCESS) })?;
    linker.func_wrap(
        m,
        "fd_fdstat_get",
        |mut c: Ctx<'_>, fd: u32, ret: u32| -> R {
            if !is_stdio(fd) {
                return Ok(EBADF);
            }
            // filetype 0, flags 0, rights_base = FD_WRITE (64), rights_inheriting 0.
            let mut stat = [0u8; 24];
            stat[8..16].copy_from_slice(&64u64.to_le_bytes());
            Ok(if write(&mut c, ret, &stat) {
                SUCCESS
            } else {
                EFAULT
            })
        },
    )?;
    linker.func_wrap(
        m,
        "fd_fdstat_set_flags",
        |_c: Ctx<'_>, _fd: u32, _flags: u32| -> R { Ok(ENOSYS) },
    )?;
    linker.func_wrap(
        m,
        "fd_fdstat_set_rights",
        |_c: Ctx<'_>, fd: u32, _base: u64, _inh: u64| -> R {
            Ok(if is_stdio(fd) { SUCCESS } else { EBADF })
        },
    )?;
    linker.func_wrap(
        m,
        "fd_prestat_get",
        |_c: Ctx<'_>, _fd: u32, _ret: u32| -> R { Ok(EBADF) },
    )?;
    linker.func_wrap(
        m,
        "fd_prestat_dir_name",
        |_c: Ctx<'_>, _fd: u32, _path: u32, _len: u32| -> R { Ok(ENOSYS) },
    )?;
    linker.func_wrap(
        m,
        "fd_filestat_get",
        |_c: Ctx<'_>, _fd: u32, _ret: u32| -> R { Ok(EBADF) },
    )?;
    linker.func_wrap(
        m,
        "fd_filestat_set_size",
        |_c: Ctx<'_>, fd: u32, _size: u64| -> R { Ok(if is_stdio(fd) { SUCCESS } else { EBADF }) },
    )?;
    linker.func_wrap(
        m,
        "fd_filestat_set_times",
        |_c: Ctx<'_>, fd: u32, _a: u64, _m: u64, _flags: u32| -> R {
            Ok(if is_stdio(fd) { SUCCESS } else { EBADF })
        },
    )?;
    linker.func_wrap(
        m,
        "fd_advise",
        |_c: Ctx<'_>, _fd: u32, _offset: u64, _len: u64, _advice: u32| -> R { Ok(SUCCESS) },
    )?;
    linker.func_wrap(
        m,
        "fd_allocate",
        |_c: Ctx<'_>, fd: u32, _offset: u64, _len: u64| -> R {
            Ok(if is_stdio(fd) { SUCCESS } else { EBADF })
        },
    )?;
    linker.func_wrap(m, "fd_datasync", |_c: Ctx<'_>, fd: u32| -> R {
        Ok(if is_stdio(fd) { SUCCESS } else { EBADF })
    })?;
    linker.func_wrap(m, "fd_sync", |_c: Ctx<'_>, fd: u32| -> R {
        Ok(if is_stdio(fd) { SUCCESS } else { EBADF })
    })?;
    linker.func_wrap(m, "fd_tell", |mut c: Ctx<'_>, fd: u32, ret: u32| -> R {
        if !is_stdio(fd) {
            return Ok(EBADF);
        }
        Ok(if write_u64(&mut c, ret, 0) {
            SUCCESS
        } else {
            EFAULT
        })
    })?;
    linker.func_wrap(
        m,
        "fd_readdir",
        |mut c: Ctx<'_>, _fd: u32, _buf: u32, _len: u32, _cookie: u64, ret: u32| -> R {
            write_u32(&mut c, ret, 0);
            Ok(ENOTDIR)
        },
    )?;
    linker.func_wrap(m, "fd_renumber", |_c: Ctx<'_>, fd: u32, to: u32| -> R {
        Ok(if is_stdio(fd) && is_stdio(to) {
            ENOTSUP
        } else {
            EBADF
        })
    })?;
    linker.func_wrap(
        m,
        "path_open",
        |_c: Ctx<'_>,
         _fd: u32,
         _dirflags: u32,
         _path: u32,
         _len: u32,
         _oflags: u32,
         _base: u64,
         _inh: u64,
         _fdflags: u32,
         _ret: u32|
         -> R { Ok(ENOENT) },
    )?;
    linker.func_wrap(
        m,
        "path_filestat_get",
        |_c: Ctx<'_>, _fd: u32, _flags: u32, _path: u32, _len: u32, _ret: u32| -> R { Ok(ENOTSUP) },
    )?;
    linker.func_wrap(
        m,
        "path_filestat_set_times",
        |_c: Ctx<'_>,
         _fd: u32,
         _flags: u32,
         _path: u32,
         _len: u32,
         _a: u64,
         _m: u64,
         _fst: u32|
         -> R { Ok(ENOTSUP) },
    )?;
    linker.func_wrap(
        m,
        "path_create_directory",
        |_c: Ctx<'_>, _fd: u32, _path: u32, _len: u32| -> R { Ok(ENOTSUP) },
    )?;
    linker.func_wrap(
        m,
        "path_link",
        |_c: Ctx<'_>,
         _ofd: u32,
         _oflags: u32,
         _op: u32,
         _ol: u32,
         _nfd: u32,
         _np: u32,
         _nl: u32|
         -> R { Ok(ENOTSUP) },
    )?;
    linker.func_wrap(
        m,
        "path_readlink",
        |mut c: Ctx<'_>,
         _fd: u32,
         _path: u32,
         _len: u32,
         _buf: u32,
         _buf_len: u32,
         ret: u32|
         -> R {
            write_u32(&mut c, ret, 0);
            Ok(ENOTSUP)
        },
    )?;
    linker.func_wrap(
        m,
        "path_remove_directory",
        |_c: Ctx<'_>, _fd: u32, _path: u32, _len: u32| -> R { Ok(ENOTSUP) },
    )?;
    linker.func_wrap(
        m,
        "path_rename",
        |_c: Ctx<'_>, _fd: u32, _op: u32, _ol: u32, _nfd: u32, _np: u32, _nl: u32| -> R {
            Ok(ENOTSUP)
        },
    )?;
    linker.func_wrap(
        m,
        "path_symlink",
        |_c: Ctx<'_>, _op: u32, _ol: u32, _fd: u32, _np: u32, _nl: u32| -> R { Ok(ENOTSUP) },
    )?;
    linker.func_wrap(
        m,
        "path_unlink_file",
        |_c: Ctx<'_>, _fd: u32, _path: u32, _len: u32| -> R { Ok(ENOTSUP) },
    )?;
    linker.func_wrap(
        m,
        "poll_oneoff",
        |_c: Ctx<'_>, _in: u32, _out: u32, _n: u32, _ret: u32| -> R { Ok(ENOSYS) },
    )?;
    linker.func_wrap(
        m,
        "proc_exit",
        |_c: Ctx<'_>, exit_code: u32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::msg(format!(
                "the module called proc_exit({exit_code})"
            )))
        },
    )?;
    linker.func_wrap(m, "random_get", |mut c: Ctx<'_>, buf: u32, len: u32| -> R {
        let mut bytes = Vec::with_capacity(len as usize);
        while bytes.len() < len as usize {
            bytes.extend_from_slice(&c.data_mut().next_random().to_le_bytes());
        }
        bytes.truncate(len as usize);
        Ok(if write(&mut c, buf, &bytes) {
            SUCCESS
        } else {
            EFAULT
        })
    })?;
    linker.func_wrap(m, "sched_yield", |_c: Ctx<'_>| -> R { Ok(SUCCESS) })?;
    linker.func_wrap(
        m,
        "sock_accept",
        |mut c: Ctx<'_>, _fd: u32, _flags: u32, ret: u32| -> R {
            write_u32(&mut c, ret, 0);
            Ok(ENOTSUP)
        },
    )?;
    linker.func_wrap(
        m,
        "sock_recv",
        |_c: Ctx<'_>,
         _fd: u32,
         _data: u32,
         _len: u32,
         _flags: u32,
         _ret_len: u32,
         _ret_flags: u32|
         -> R { Ok(ENOTSUP) },
    )?;
    linker.func_wrap(
        m,
        "sock_send",
        |_c: Ctx<'_>, _fd: u32, _data: u32, _len: u32, _flags: u32, _ret: u32| -> R { Ok(ENOTSUP) },
    )?;
    linker.func_wrap(
        m,
        "sock_shutdown",
        |_c: Ctx<'_>, _fd: u32, _how: u32| -> R { Ok(ENOTSUP) },
    )?;
    Ok(())
}

/// Register the WASI functions under both module names.
pub(crate) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    add_module(linker, "wasi_snapshot_preview1")?;
    add_module(linker, "wasi_unstable")
}
