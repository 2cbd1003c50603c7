//! Shared by the fuzz targets: a local HTTP stand-in that answers every request with the
//! status and body under test, so the real HTTP clients (registrar adapters, PowerDNS) parse
//! fuzzed responses through their own code paths, transport included.
#![forbid(unsafe_code)]

use std::sync::{Arc, Mutex, OnceLock};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

/// Splits `data` at the first 0xFF byte (a byte no UTF-8 text holds): (before, after).
pub fn split_ff(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    }
}

/// The answer the stand-in gives: status, content type, body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// A stand-in server on 127.0.0.1 and the single-threaded runtime that drives it (and the
/// client calls made with [`StandIn::block_on`]).
pub struct StandIn {
    runtime: Runtime,
    answer: Arc<Mutex<Answer>>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl StandIn {
    /// The process-wide stand-in (started on first use).
    pub fn get() -> &'static StandIn {
        static STAND_IN: OnceLock<StandIn> = OnceLock::new();
        STAND_IN.get_or_init(StandIn::start)
    }

    fn start() -> StandIn {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let answer = Arc::new(Mutex::new(Answer {
            status: 200,
            content_type: "application/json",
            body: Vec::new(),
        }));
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("a local port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let shared = answer.clone();
        runtime.spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let _ = socket.set_nodelay(true);
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        StandIn {
            runtime,
            answer,
            base,
        }
    }

    /// Sets what every request is answered with from now on.
    pub fn answer(&self, answer: Answer) {
        *self.answer.lock().expect("the answer lock") = answer;
    }

    /// Runs a client future (the stand-in runs alongside it).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}

/// HTTP/1.1 keep-alive: reads a request head (and its `Content-Length` body), answers, repeats.
async fn serve(socket: tokio::net::TcpStream, answer: Arc<Mutex<Answer>>) {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            match read.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if read.read_exact(&mut body).await.is_err() {
            return;
        }
        let mut a = answer.lock().expect("the answer lock").clone();
        if a.status == 204 {
            // No body may follow a 204; one would be read as the next response.
            a.body.clear();
        }
        // One write: a head and a body in two small segments would wait on delayed ACKs.
        let mut out = format!(
            "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\n\r\n",
            a.status,
            a.content_type,
            a.body.len()
        )
        .into_bytes();
        out.extend_from_slice(&a.body);
        if write.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// A status for a response under test, chosen by one input byte: mostly 200, and the codes
/// the clients treat specially.
pub fn status_of(b: u8) -> u16 {
    const STATUSES: [u16; 16] = [
        200, 200, 200, 200, 200, 200, 201, 204, 400, 401, 403, 404, 409, 422, 429, 500,
    ];
    STATUSES[usize::from(b) % STATUSES.len()]
}
