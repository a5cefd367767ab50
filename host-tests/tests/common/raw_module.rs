//! A hand-assembled proxy-wasm module that returns fixed raw codes from its
//! stream callbacks — codes the Rust SDK cannot produce (its `Action` has only
//! Continue and Pause), but Envoy defines: StopIterationAndWatermark (2),
//! StopIterationNoBuffer (3), anything above, and header status 3
//! (StopAllIterationAndBuffer). It imports nothing.

use std::path::PathBuf;

/// What each callback returns. Body callbacks return their code while
/// `end_of_stream` is false and Continue (0) on the last chunk.
#[derive(Debug, Clone, Copy)]
pub struct Codes {
    pub request_headers: u8,
    pub request_body_until_eos: u8,
    pub response_headers: u8,
    pub response_body_until_eos: u8,
}

fn leb(mut n: u32, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section(id: u8, content: Vec<u8>, out: &mut Vec<u8>) {
    out.push(id);
    leb(content.len() as u32, out);
    out.extend(content);
}

fn name(s: &str, out: &mut Vec<u8>) {
    leb(s.len() as u32, out);
    out.extend_from_slice(s.as_bytes());
}

const I32: u8 = 0x7f;

/// The module's bytes.
pub fn bytes(codes: Codes) -> Vec<u8> {
    assert!([
        codes.request_headers,
        codes.request_body_until_eos,
        codes.response_headers,
        codes.response_body_until_eos
    ]
    .iter()
    .all(|c| *c < 64));
    // Function types.
    let types: [(&[u8], &[u8]); 5] = [
        (&[], &[]),
        (&[I32, I32], &[]),
        (&[I32, I32], &[I32]),
        (&[I32, I32, I32], &[I32]),
        (&[I32], &[I32]),
    ];
    let mut type_sec = Vec::new();
    leb(types.len() as u32, &mut type_sec);
    for (params, results) in types {
        type_sec.push(0x60);
        leb(params.len() as u32, &mut type_sec);
        type_sec.extend_from_slice(params);
        leb(results.len() as u32, &mut type_sec);
        type_sec.extend_from_slice(results);
    }
    // (export name, type index, body instructions without the final `end`).
    let const_i32 = |v: u8| vec![0x41, v];
    // local.get 2 (end_of_stream); if (result i32) i32.const 0 else i32.const v end
    let until_eos = |v: u8| vec![0x20, 0x02, 0x04, I32, 0x41, 0x00, 0x05, 0x41, v, 0x0b];
    let funcs: Vec<(&str, u32, Vec<u8>)> = vec![
        ("proxy_abi_version_0_2_1", 0, vec![]),
        ("proxy_on_context_create", 1, vec![]),
        ("proxy_on_vm_start", 2, const_i32(1)),
        ("proxy_on_configure", 2, const_i32(1)),
        (
            "proxy_on_request_headers",
            3,
            const_i32(codes.request_headers),
        ),
        (
            "proxy_on_request_body",
            3,
            until_eos(codes.request_body_until_eos),
        ),
        (
            "proxy_on_response_headers",
            3,
            const_i32(codes.response_headers),
        ),
        (
            "proxy_on_response_body",
            3,
            until_eos(codes.response_body_until_eos),
        ),
        // A fixed scratch address: nothing here ever asks the host for data.
        ("proxy_on_memory_allocate", 4, vec![0x41, 0x80, 0x08]),
    ];
    let mut func_sec = Vec::new();
    leb(funcs.len() as u32, &mut func_sec);
    for (_, ty, _) in &funcs {
        leb(*ty, &mut func_sec);
    }
    let mut mem_sec = Vec::new();
    leb(1, &mut mem_sec);
    mem_sec.extend_from_slice(&[0x00, 0x01]);
    let mut export_sec = Vec::new();
    leb(funcs.len() as u32 + 1, &mut export_sec);
    for (i, (n, _, _)) in funcs.iter().enumerate() {
        name(n, &mut export_sec);
        export_sec.push(0x00);
        leb(i as u32, &mut export_sec);
    }
    name("memory", &mut export_sec);
    export_sec.push(0x02);
    leb(0, &mut export_sec);
    let mut code_sec = Vec::new();
    leb(funcs.len() as u32, &mut code_sec);
    for (_, _, body) in &funcs {
        let mut f = vec![0x00]; // no locals
        f.extend_from_slice(body);
        f.push(0x0b);
        leb(f.len() as u32, &mut code_sec);
        code_sec.extend(f);
    }
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    section(1, type_sec, &mut module);
    section(3, func_sec, &mut module);
    section(5, mem_sec, &mut module);
    section(7, export_sec, &mut module);
    section(10, code_sec, &mut module);
    module
}

/// Write the module to a temporary file (one per set of codes) and return its path.
pub fn path(codes: Codes) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rheostat-raw-modules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join(format!(
        "raw-{}-{}-{}-{}.wasm",
        codes.request_headers,
        codes.request_body_until_eos,
        codes.response_headers,
        codes.response_body_until_eos
    ));
    std::fs::write(&path, bytes(codes)).expect("write the module");
    path
}
