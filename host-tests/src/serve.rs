//! `rheostat serve`: the compiled filter in front of a real upstream, for
//! trying a policy with any HTTP client (curl, an SDK) without Envoy.
//!
//! One connection at a time, HTTP/1.1, plain HTTP both ways: this is a
//! trial harness, not a proxy for production (that is Envoy's job). Each
//! request goes through the module exactly as the tests drive it — request
//! headers and body, then the upstream's answer chunk by chunk as it
//! arrives — and what the filter releases is written to the client at once,
//! so streamed answers stream. The host's clock follows the wall clock
//! between requests, so windows, ticks and breakers behave in real time.
//! Outgoing calls (alerts, shadow, verification) go to clusters the host
//! does not have: they are logged, not sent.

use crate::host::{Host, HostConfig};
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// Largest request head (request line and headers) accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest request body accepted (the filter answers 413 well before this
/// for its own limit; this only bounds what the harness reads).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

pub struct ServeOptions<'a> {
    pub module: &'a Path,
    pub policy: Vec<u8>,
    pub listen: &'a str,
    /// `http://host:port`, no path.
    pub upstream: &'a str,
}

pub fn serve(options: &ServeOptions<'_>) -> Result<()> {
    let upstream = options.upstream.trim_end_matches('/');
    if !upstream.starts_with("http://") {
        bail!("--upstream must be a plain http:// URL (got {upstream:?}); put a local TLS-terminating proxy in front of a remote provider");
    }
    let mut host = Host::start(HostConfig {
        module: options.module.to_path_buf(),
        plugin_config: options.policy.clone(),
        ..HostConfig::default()
    })
    .context("starting the filter")?;
    if let Some(failed) = host.worker(0).failed() {
        bail!("the filter rejected the policy: {failed}");
    }
    print_logs(&host);
    let listener = TcpListener::bind(options.listen)
        .with_context(|| format!("listening on {}", options.listen))?;
    eprintln!("rheostat serve: http://{} -> {upstream}", options.listen);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let mut last = Instant::now();
    for connection in listener.incoming() {
        let Ok(connection) = connection else { continue };
        let elapsed = last.elapsed().as_millis() as u64;
        last = Instant::now();
        host.advance(elapsed);
        if let Err(e) = handle(&mut host, &agent, upstream, connection) {
            eprintln!("rheostat serve: {e:#}");
        }
        print_logs(&host);
    }
    Ok(())
}

fn print_logs(host: &Host) {
    for line in host.shared().take_logs() {
        eprintln!("{}", line.message);
    }
}

/// A parsed request head.
struct Head {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

fn read_head(reader: &mut BufReader<TcpStream>) -> Result<Option<Head>> {
    let mut raw = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(None);
        }
        raw.extend_from_slice(&line);
        if raw.len() > MAX_HEAD_BYTES {
            bail!("request head over {MAX_HEAD_BYTES} bytes");
        }
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(&raw).context("parsing the request head")? {
        httparse::Status::Complete(_) => {}
        httparse::Status::Partial => bail!("incomplete request head"),
    }
    Ok(Some(Head {
        method: request.method.unwrap_or("GET").to_string(),
        path: request.path.unwrap_or("/").to_string(),
        headers: request
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
    }))
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn read_body(reader: &mut BufReader<TcpStream>, headers: &[(String, String)]) -> Result<Vec<u8>> {
    if header(headers, "transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
                .context("a chunk size that is not hex")?;
            if body.len() + size > MAX_BODY_BYTES {
                bail!("request body over {MAX_BODY_BYTES} bytes");
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let length: usize = header(headers, "content-length")
        .map_or(Ok(0), str::parse)
        .context("content-length")?;
    if length > MAX_BODY_BYTES {
        bail!("request body over {MAX_BODY_BYTES} bytes");
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(body)
}

/// Headers that describe one hop's framing, never forwarded across it.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-connection"
            | "content-length"
    )
}

fn handle(
    host: &mut Host,
    agent: &ureq::Agent,
    upstream: &str,
    connection: TcpStream,
) -> Result<()> {
    let mut client = connection.try_clone()?;
    let mut reader = BufReader::new(connection);
    let Some(head) = read_head(&mut reader)? else {
        return Ok(());
    };
    let body = read_body(&mut reader, &head.headers)?;
    let authority = header(&head.headers, "host")
        .unwrap_or("localhost")
        .to_string();
    let mut pairs: Vec<(&str, &str)> = vec![
        (":method", head.method.as_str()),
        (":path", head.path.as_str()),
        (":authority", authority.as_str()),
        (":scheme", "http"),
    ];
    pairs.extend(
        head.headers
            .iter()
            .filter(|(k, _)| k != "host" && !hop_by_hop(k))
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let worker = host.worker(0);
    let mut stream = worker.open_stream();
    stream.request_headers(&pairs, body.is_empty());
    if !body.is_empty() {
        stream.request_body(&body, true);
    }
    if stream.local_reply().is_some() || !stream.upstream_complete() {
        // Answered by the filter (or stopped): whatever it produced is the answer.
        return write_whole(&mut stream, &mut client, 502);
    }
    let forwarded = stream.upstream_headers().unwrap_or_default();
    let forwarded_body = stream.upstream_body();
    let path = header_of(&forwarded, ":path").unwrap_or("/").to_string();
    let method = header_of(&forwarded, ":method")
        .unwrap_or("POST")
        .to_string();
    let mut request = ureq::http::Request::builder()
        .method(method.as_str())
        .uri(format!("{upstream}{path}"));
    for (k, v) in &forwarded {
        if !k.starts_with(':') && !hop_by_hop(k) {
            request = request.header(k.as_str(), v.as_str());
        }
    }
    let request = request
        .body(forwarded_body)
        .context("building the upstream request")?;
    let mut response = match agent.run(request) {
        Ok(response) => response,
        Err(e) => {
            // As Envoy's router would: a 503 the filter sees like any answer.
            stream.response_headers(&[(":status", "503"), ("content-type", "text/plain")], false);
            stream.response_body(format!("upstream unavailable: {e}").as_bytes(), true);
            return write_whole(&mut stream, &mut client, 503);
        }
    };
    let status = response.status().as_u16().to_string();
    let upstream_headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(k, _)| !hop_by_hop(k.as_str()))
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut response_pairs: Vec<(&str, &str)> = vec![(":status", status.as_str())];
    response_pairs.extend(
        upstream_headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    stream.response_headers(&response_pairs, false);
    let mut headers_sent = false;
    let mut sent = 0;
    let mut body_reader = response.body_mut().as_reader();
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let n = body_reader
            .read(&mut buffer)
            .context("reading the upstream body")?;
        stream.response_body(&buffer[..n], n == 0);
        if !headers_sent {
            if let Some(headers) = stream.downstream_headers() {
                let status = stream.downstream_status().unwrap_or(200);
                write_head(&mut client, status, &headers)?;
                headers_sent = true;
            }
        }
        if headers_sent {
            let out = stream.downstream_body();
            if out.len() > sent {
                write_chunk(&mut client, &out[sent..])?;
                sent = out.len();
            }
        }
        if n == 0 || stream.ended() {
            break;
        }
    }
    stream.finish();
    if !headers_sent {
        write_head(&mut client, 502, &[])?;
    }
    write_chunk(&mut client, b"")
}

/// Writes everything the filter has produced for the client, and ends the stream.
fn write_whole(
    stream: &mut crate::stream::Stream<'_>,
    client: &mut TcpStream,
    default_status: u16,
) -> Result<()> {
    let status = stream.downstream_status().unwrap_or(default_status);
    let headers = stream.downstream_headers().unwrap_or_default();
    let out = stream.downstream_body();
    stream.finish();
    write_head(client, status, &headers)?;
    write_chunk(client, &out)?;
    write_chunk(client, b"")
}

fn header_of<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn write_head(client: &mut TcpStream, status: u16, headers: &[(String, String)]) -> Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        if !k.starts_with(':') && !hop_by_hop(k) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("transfer-encoding: chunked\r\nconnection: close\r\n\r\n");
    client.write_all(head.as_bytes())?;
    Ok(())
}

/// One chunk of a chunked body; an empty one ends the body.
fn write_chunk(client: &mut TcpStream, data: &[u8]) -> Result<()> {
    if data.is_empty() {
        client.write_all(b"0\r\n\r\n")?;
    } else {
        client.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
        client.write_all(data)?;
        client.write_all(b"\r\n")?;
    }
    client.flush()?;
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}
