//! The `env.proxy_*` host functions: every import the Rust SDK 0.2.5 can
//! reference, plus the other ABI 0.2.x ones proxy-wasm-cpp-host registers.
//!
//! Each function checks guest pointers before touching memory and answers
//! `InvalidMemoryAccess` for bad ones, as cpp-host does: a broken module can
//! trap itself, never the host. The logic lives in `VmState`; this file moves
//! bytes across the guest boundary.

use crate::abi::{self, Status};
use crate::log::LogLevel;
use crate::properties;
use crate::vm::{LocalReply, VmState};
use wasmtime::{Caller, Linker};

type Ctx<'a> = Caller<'a, VmState>;
type R = wasmtime::Result<u32>;

/// The guest bytes at `ptr..ptr+len`, or None if out of bounds.
pub(crate) fn read(c: &Ctx<'_>, ptr: u32, len: u32) -> Option<Vec<u8>> {
    let memory = c.data().memory?;
    let start = ptr as usize;
    let end = start.checked_add(len as usize)?;
    memory.data(c).get(start..end).map(<[u8]>::to_vec)
}

fn read_str(c: &Ctx<'_>, ptr: u32, len: u32) -> Option<String> {
    read(c, ptr, len).map(|b| String::from_utf8_lossy(&b).into_owned())
}

pub(crate) fn write(c: &mut Ctx<'_>, ptr: u32, bytes: &[u8]) -> bool {
    let Some(memory) = c.data().memory else {
        return false;
    };
    let start = ptr as usize;
    let Some(end) = start.checked_add(bytes.len()) else {
        return false;
    };
    match memory.data_mut(c).get_mut(start..end) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

pub(crate) fn write_u32(c: &mut Ctx<'_>, ptr: u32, v: u32) -> bool {
    write(c, ptr, &v.to_le_bytes())
}

pub(crate) fn write_u64(c: &mut Ctx<'_>, ptr: u32, v: u64) -> bool {
    write(c, ptr, &v.to_le_bytes())
}

/// cpp-host's `copyToPointerSize`: allocate in the guest, copy, then write
/// the pointer and size. Empty data writes a null pointer and size 0. An
/// error is returned only if the guest allocator traps.
fn copy_out(c: &mut Ctx<'_>, bytes: &[u8], ptr_ptr: u32, size_ptr: u32) -> R {
    let mut pointer = 0u32;
    if !bytes.is_empty() {
        let Some(malloc) = c.data().malloc.clone() else {
            return Ok(Status::InvalidMemoryAccess.code());
        };
        let Ok(len) = u32::try_from(bytes.len()) else {
            return Ok(Status::InvalidMemoryAccess.code());
        };
        pointer = malloc.call(&mut *c, len)?;
        if pointer == 0 || !write(c, pointer, bytes) {
            return Ok(Status::InvalidMemoryAccess.code());
        }
    }
    if !write_u32(c, ptr_ptr, pointer) || !write_u32(c, size_ptr, bytes.len() as u32) {
        return Ok(Status::InvalidMemoryAccess.code());
    }
    Ok(Status::Ok.code())
}

fn code(s: Status) -> R {
    Ok(s.code())
}

macro_rules! bytes_or_fault {
    ($c:expr, $ptr:expr, $len:expr) => {
        match read(&$c, $ptr, $len) {
            Some(v) => v,
            None => return code(Status::InvalidMemoryAccess),
        }
    };
}

macro_rules! str_or_fault {
    ($c:expr, $ptr:expr, $len:expr) => {
        match read_str(&$c, $ptr, $len) {
            Some(v) => v,
            None => return code(Status::InvalidMemoryAccess),
        }
    };
}

/// Every `env` function name this host provides.
pub const ENV_FUNCTIONS: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_current_time_nanoseconds",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_configuration",
    "proxy_get_buffer_bytes",
    "proxy_get_buffer_status",
    "proxy_set_buffer_bytes",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_add_header_map_value",
    "proxy_get_header_map_size",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_continue_request",
    "proxy_continue_response",
    "proxy_clear_route_cache",
    "proxy_send_local_response",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_get_status",
    "proxy_set_effective_context",
    "proxy_done",
    "proxy_call_foreign_function",
    "proxy_define_metric",
    "proxy_increment_metric",
    "proxy_record_metric",
    "proxy_get_metric",
];

/// Define every `env.proxy_*` function on the linker.
pub(crate) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    let env = "env";

    linker.func_wrap(
        env,
        "proxy_log",
        |mut c: Ctx<'_>, level: u32, ptr: u32, len: u32| -> R {
            let message = str_or_fault!(c, ptr, len);
            // Envoy has no level above critical (spdlog's "off" aborts Envoy).
            let Some(level) = LogLevel::from_u32(level) else {
                return code(Status::BadArgument);
            };
            c.data_mut().log(level, message);
            code(Status::Ok)
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_get_log_level",
        |mut c: Ctx<'_>, ret: u32| -> R {
            let level = c.data().plugin.log_level as u32;
            code(if write_u32(&mut c, ret, level) {
                Status::Ok
            } else {
                Status::InvalidMemoryAccess
            })
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_get_current_time_nanoseconds",
        |mut c: Ctx<'_>, ret: u32| -> R {
            let now = c.data().shared.clock.now_ns();
            code(if write_u64(&mut c, ret, now) {
                Status::Ok
            } else {
                Status::InvalidMemoryAccess
            })
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_set_tick_period_milliseconds",
        |mut c: Ctx<'_>, period: u32| -> R { code(c.data_mut().set_tick_period(period)) },
    )?;

    // ABI 0.1.0: the configuration of the call in progress.
    linker.func_wrap(
        env,
        "proxy_get_configuration",
        |mut c: Ctx<'_>, ret_ptr: u32, ret_size: u32| -> R {
            let config = {
                let vm = c.data();
                vm.scope
                    .plugin_config
                    .as_ref()
                    .map(|p| p.to_vec())
                    .unwrap_or_else(|| vm.plugin.vm_config.clone())
            };
            copy_out(&mut c, &config, ret_ptr, ret_size)
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_get_buffer_bytes",
        |mut c: Ctx<'_>,
         buffer_type: u32,
         start: u32,
         max: u32,
         ret_ptr: u32,
         ret_size: u32|
         -> R {
            let bytes = match c.data().buffer(buffer_type) {
                Ok(b) => b,
                Err(s) => return code(s),
            };
            // Reads past the end are clamped; a zero-length read is Ok with a
            // null pointer.
            let begin = (start as usize).min(bytes.len());
            let end = begin.saturating_add(max as usize).min(bytes.len());
            copy_out(&mut c, &bytes[begin..end], ret_ptr, ret_size)
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_get_buffer_status",
        |mut c: Ctx<'_>, buffer_type: u32, len_ptr: u32, flags_ptr: u32| -> R {
            let len = match c.data().buffer(buffer_type) {
                Ok(b) => b.len() as u32,
                Err(s) => return code(s),
            };
            if !write_u32(&mut c, len_ptr, len) || !write_u32(&mut c, flags_ptr, 0) {
                return code(Status::InvalidMemoryAccess);
            }
            code(Status::Ok)
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_set_buffer_bytes",
        |mut c: Ctx<'_>, buffer_type: u32, start: u32, size: u32, ptr: u32, len: u32| -> R {
            let data = bytes_or_fault!(c, ptr, len);
            code(c.data_mut().set_buffer(buffer_type, start, size, &data))
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_get_header_map_pairs",
        |mut c: Ctx<'_>, map_type: u32, ret_ptr: u32, ret_size: u32| -> R {
            let pairs = match c.data().const_map(map_type) {
                Ok(Some(m)) => m.pairs().to_vec(),
                // A null map reads as an empty list.
                Ok(None) => Vec::new(),
                Err(s) => return code(s),
            };
            let bytes = if pairs.is_empty() {
                Vec::new()
            } else {
                abi::serialize_pairs(&pairs)
            };
            copy_out(&mut c, &bytes, ret_ptr, ret_size)
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_set_header_map_pairs",
        |mut c: Ctx<'_>, map_type: u32, ptr: u32, len: u32| -> R {
            if map_type > abi::map::MAX {
                return code(Status::BadArgument);
            }
            let bytes = bytes_or_fault!(c, ptr, len);
            let pairs = abi::parse_pairs(&bytes);
            match c.data_mut().mut_map(map_type) {
                Ok(m) => {
                    m.replace_all(&pairs);
                    code(Status::Ok)
                }
                Err(s) => code(s),
            }
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_get_header_map_value",
        |mut c: Ctx<'_>,
         map_type: u32,
         key_ptr: u32,
         key_len: u32,
         ret_ptr: u32,
         ret_size: u32|
         -> R {
            if map_type > abi::map::MAX {
                return code(Status::BadArgument);
            }
            let key = str_or_fault!(c, key_ptr, key_len);
            match c.data().header_value(map_type, &key) {
                Ok(v) => copy_out(&mut c, v.as_bytes(), ret_ptr, ret_size),
                Err(s) => code(s),
            }
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_replace_header_map_value",
        |mut c: Ctx<'_>,
         map_type: u32,
         key_ptr: u32,
         key_len: u32,
         value_ptr: u32,
         value_len: u32|
         -> R {
            if map_type > abi::map::MAX {
                return code(Status::BadArgument);
            }
            let key = str_or_fault!(c, key_ptr, key_len);
            let value = str_or_fault!(c, value_ptr, value_len);
            match c.data_mut().mut_map(map_type) {
                Ok(m) => {
                    m.set(&key, &value);
                    code(Status::Ok)
                }
                Err(s) => code(s),
            }
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_remove_header_map_value",
        |mut c: Ctx<'_>, map_type: u32, key_ptr: u32, key_len: u32| -> R {
            if map_type > abi::map::MAX {
                return code(Status::BadArgument);
            }
            let key = str_or_fault!(c, key_ptr, key_len);
            match c.data_mut().mut_map(map_type) {
                Ok(m) => {
                    m.remove(&key);
                    code(Status::Ok)
                }
                Err(s) => code(s),
            }
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_add_header_map_value",
        |mut c: Ctx<'_>,
         map_type: u32,
         key_ptr: u32,
         key_len: u32,
         value_ptr: u32,
         value_len: u32|
         -> R {
            if map_type > abi::map::MAX {
                return code(Status::BadArgument);
            }
            let key = str_or_fault!(c, key_ptr, key_len);
            let value = str_or_fault!(c, value_ptr, value_len);
            match c.data_mut().mut_map(map_type) {
                Ok(m) => {
                    m.add(&key, &value);
                    code(Status::Ok)
                }
                Err(s) => code(s),
            }
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_get_header_map_size",
        |mut c: Ctx<'_>, map_type: u32, ret: u32| -> R {
            if map_type > abi::map::MAX {
                return code(Status::BadArgument);
            }
            let size = match c.data_mut().mut_map(map_type) {
                Ok(m) => m.byte_size() as u32,
                Err(s) => return code(s),
            };
            code(if write_u32(&mut c, ret, size) {
                Status::Ok
            } else {
                Status::InvalidMemoryAccess
            })
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_get_property",
        |mut c: Ctx<'_>, path_ptr: u32, path_len: u32, ret_ptr: u32, ret_size: u32| -> R {
            let path = bytes_or_fault!(c, path_ptr, path_len);
            match properties::get(c.data(), &path) {
                Ok(v) => copy_out(&mut c, &v, ret_ptr, ret_size),
                Err(s) => code(s),
            }
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_set_property",
        |mut c: Ctx<'_>, path_ptr: u32, path_len: u32, value_ptr: u32, value_len: u32| -> R {
            let path = bytes_or_fault!(c, path_ptr, path_len);
            let value = bytes_or_fault!(c, value_ptr, value_len);
            code(properties::set(c.data_mut(), &path, &value))
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_get_shared_data",
        |mut c: Ctx<'_>,
         key_ptr: u32,
         key_len: u32,
         ret_ptr: u32,
         ret_size: u32,
         cas_ptr: u32|
         -> R {
            let key = str_or_fault!(c, key_ptr, key_len);
            let (value, cas) = match c.data().get_shared_data(&key) {
                Ok(v) => v,
                Err(s) => return code(s),
            };
            let status = copy_out(&mut c, &value, ret_ptr, ret_size)?;
            if status != Status::Ok.code() {
                return Ok(status);
            }
            code(if write_u32(&mut c, cas_ptr, cas) {
                Status::Ok
            } else {
                Status::InvalidMemoryAccess
            })
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_set_shared_data",
        |c: Ctx<'_>, key_ptr: u32, key_len: u32, value_ptr: u32, value_len: u32, cas: u32| -> R {
            let key = str_or_fault!(c, key_ptr, key_len);
            let value = bytes_or_fault!(c, value_ptr, value_len);
            code(c.data().set_shared_data(&key, &value, cas))
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_register_shared_queue",
        |mut c: Ctx<'_>, name_ptr: u32, name_len: u32, ret: u32| -> R {
            let name = str_or_fault!(c, name_ptr, name_len);
            let token = c.data_mut().register_queue(&name);
            code(if write_u32(&mut c, ret, token) {
                Status::Ok
            } else {
                Status::InvalidMemoryAccess
            })
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_resolve_shared_queue",
        |mut c: Ctx<'_>, vm_ptr: u32, vm_len: u32, name_ptr: u32, name_len: u32, ret: u32| -> R {
            let vm_id = str_or_fault!(c, vm_ptr, vm_len);
            let name = str_or_fault!(c, name_ptr, name_len);
            let failed = c.data().failed.is_some();
            match c.data().resolve_queue(&vm_id, &name) {
                Ok(token) if !failed => code(if write_u32(&mut c, ret, token) {
                    Status::Ok
                } else {
                    Status::InvalidMemoryAccess
                }),
                _ => code(Status::NotFound),
            }
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_dequeue_shared_queue",
        |mut c: Ctx<'_>, token: u32, ret_ptr: u32, ret_size: u32| -> R {
            match c.data().dequeue(token) {
                Ok(v) => copy_out(&mut c, &v, ret_ptr, ret_size),
                Err(s) => code(s),
            }
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_enqueue_shared_queue",
        |c: Ctx<'_>, token: u32, ptr: u32, len: u32| -> R {
            let value = bytes_or_fault!(c, ptr, len);
            code(c.data().enqueue(token, &value))
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_continue_stream",
        |mut c: Ctx<'_>, stream_type: u32| -> R { code(c.data_mut().continue_stream(stream_type)) },
    )?;
    linker.func_wrap(
        env,
        "proxy_close_stream",
        |mut c: Ctx<'_>, stream_type: u32| -> R { code(c.data_mut().close_stream(stream_type)) },
    )?;
    linker.func_wrap(env, "proxy_continue_request", |mut c: Ctx<'_>| -> R {
        code(c.data_mut().continue_stream(abi::stream_type::REQUEST))
    })?;
    linker.func_wrap(env, "proxy_continue_response", |mut c: Ctx<'_>| -> R {
        code(c.data_mut().continue_stream(abi::stream_type::RESPONSE))
    })?;
    linker.func_wrap(env, "proxy_clear_route_cache", |_c: Ctx<'_>| -> R {
        code(Status::Ok)
    })?;

    linker.func_wrap(
        env,
        "proxy_send_local_response",
        |mut c: Ctx<'_>,
         status: u32,
         details_ptr: u32,
         details_len: u32,
         body_ptr: u32,
         body_len: u32,
         headers_ptr: u32,
         headers_len: u32,
         _grpc_status: i32|
         -> R {
            let details = str_or_fault!(c, details_ptr, details_len);
            let body = bytes_or_fault!(c, body_ptr, body_len);
            let headers = bytes_or_fault!(c, headers_ptr, headers_len);
            let reply = LocalReply {
                status: u16::try_from(status).unwrap_or(500),
                body,
                headers: abi::parse_pairs(&headers),
                // Envoy replaces whitespace in response code details.
                details: details
                    .chars()
                    .map(|ch| if ch.is_whitespace() { '_' } else { ch })
                    .collect(),
            };
            code(c.data_mut().send_local_response(reply))
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_http_call",
        |mut c: Ctx<'_>,
         up_ptr: u32,
         up_len: u32,
         headers_ptr: u32,
         headers_len: u32,
         body_ptr: u32,
         body_len: u32,
         trailers_ptr: u32,
         trailers_len: u32,
         timeout_ms: u32,
         token_ptr: u32|
         -> R {
            let upstream = str_or_fault!(c, up_ptr, up_len);
            let headers = bytes_or_fault!(c, headers_ptr, headers_len);
            let body = bytes_or_fault!(c, body_ptr, body_len);
            let trailers = bytes_or_fault!(c, trailers_ptr, trailers_len);
            // Like cpp-host, check the token pointer before starting the call.
            if !write_u32(&mut c, token_ptr, 0) {
                return code(Status::InvalidMemoryAccess);
            }
            let result = c.data_mut().http_call(
                &upstream,
                abi::parse_pairs(&headers),
                body,
                abi::parse_pairs(&trailers),
                timeout_ms,
            );
            match result {
                Ok(token) => {
                    write_u32(&mut c, token_ptr, token);
                    code(Status::Ok)
                }
                Err(s) => code(s),
            }
        },
    )?;

    // gRPC is not emulated. A service name that is no known cluster is a
    // ParseFailure (as in Envoy); a known one fails to start with
    // InternalFailure, which the SDK passes back to the module as an error.
    linker.func_wrap(
        env,
        "proxy_grpc_call",
        |c: Ctx<'_>,
         svc_ptr: u32,
         svc_len: u32,
         _name_ptr: u32,
         _name_len: u32,
         _method_ptr: u32,
         _method_len: u32,
         _md_ptr: u32,
         _md_len: u32,
         _msg_ptr: u32,
         _msg_len: u32,
         _timeout: u32,
         _token_ptr: u32|
         -> R {
            let service = str_or_fault!(c, svc_ptr, svc_len);
            code(grpc_start(c.data(), &service))
        },
    )?;
    linker.func_wrap(
        env,
        "proxy_grpc_stream",
        |c: Ctx<'_>,
         svc_ptr: u32,
         svc_len: u32,
         _name_ptr: u32,
         _name_len: u32,
         _method_ptr: u32,
         _method_len: u32,
         _md_ptr: u32,
         _md_len: u32,
         _token_ptr: u32|
         -> R {
            let service = str_or_fault!(c, svc_ptr, svc_len);
            code(grpc_start(c.data(), &service))
        },
    )?;
    linker.func_wrap(
        env,
        "proxy_grpc_send",
        |_c: Ctx<'_>, _token: u32, _ptr: u32, _len: u32, _end: u32| -> R { code(Status::NotFound) },
    )?;
    linker.func_wrap(env, "proxy_grpc_cancel", |_c: Ctx<'_>, _token: u32| -> R {
        code(Status::NotFound)
    })?;
    linker.func_wrap(env, "proxy_grpc_close", |_c: Ctx<'_>, _token: u32| -> R {
        code(Status::NotFound)
    })?;

    linker.func_wrap(
        env,
        "proxy_get_status",
        |mut c: Ctx<'_>, code_ptr: u32, ret_ptr: u32, ret_size: u32| -> R {
            let (status, message): (u32, &[u8]) = if c.data().scope.call_failed {
                (Status::BrokenConnection.code(), b"reset")
            } else {
                (0, b"")
            };
            if !write_u32(&mut c, code_ptr, status) {
                return code(Status::InvalidMemoryAccess);
            }
            copy_out(&mut c, message, ret_ptr, ret_size)
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_set_effective_context",
        |mut c: Ctx<'_>, id: u32| -> R {
            let vm = c.data_mut();
            if !vm.context_exists(id) {
                return code(Status::BadArgument);
            }
            vm.effective = id;
            code(Status::Ok)
        },
    )?;

    linker.func_wrap(env, "proxy_done", |mut c: Ctx<'_>| -> R {
        code(c.data_mut().done())
    })?;

    linker.func_wrap(
        env,
        "proxy_call_foreign_function",
        |c: Ctx<'_>,
         name_ptr: u32,
         name_len: u32,
         args_ptr: u32,
         args_len: u32,
         _ret_ptr: u32,
         _ret_size: u32|
         -> R {
            let _name = str_or_fault!(c, name_ptr, name_len);
            let _args = bytes_or_fault!(c, args_ptr, args_len);
            // No foreign functions are registered.
            code(Status::NotFound)
        },
    )?;

    linker.func_wrap(
        env,
        "proxy_define_metric",
        |mut c: Ctx<'_>, metric_type: u32, name_ptr: u32, name_len: u32, ret: u32| -> R {
            let name = str_or_fault!(c, name_ptr, name_len);
            match c.data_mut().define_metric(metric_type, &name) {
                Ok(id) => code(if write_u32(&mut c, ret, id) {
                    Status::Ok
                } else {
                    Status::InvalidMemoryAccess
                }),
                Err(s) => code(s),
            }
        },
    )?;
    linker.func_wrap(
        env,
        "proxy_increment_metric",
        |mut c: Ctx<'_>, id: u32, offset: i64| -> R {
            code(c.data_mut().increment_metric(id, offset))
        },
    )?;
    linker.func_wrap(
        env,
        "proxy_record_metric",
        |mut c: Ctx<'_>, id: u32, value: u64| -> R { code(c.data_mut().record_metric(id, value)) },
    )?;
    linker.func_wrap(
        env,
        "proxy_get_metric",
        |mut c: Ctx<'_>, id: u32, ret: u32| -> R {
            match c.data().get_metric(id) {
                Ok(v) => code(if write_u64(&mut c, ret, v) {
                    Status::Ok
                } else {
                    Status::InvalidMemoryAccess
                }),
                Err(s) => code(s),
            }
        },
    )?;

    Ok(())
}

fn grpc_start(vm: &VmState, service: &str) -> Status {
    if vm.shared.clusters.contains_key(service) {
        Status::InternalFailure
    } else {
        Status::ParseFailure
    }
}
