//! The vpcd transport: the vsmartcard virtual reader protocol over TCP (frames, control codes, reconnects).
//!
//! Two layers:
//!
//! - a sans-IO codec: [`FrameDecoder`] cuts a byte stream into frames (2-byte big-endian
//!   length + payload), [`encode_frame`] builds one, [`Request::parse`] classifies a payload
//!   (1 byte = control code, longer = C-APDU) and [`handle_frame`] answers it from a
//!   [`VirtualCard`];
//! - a blocking driver, [`serve`], which either dials the vpcd reader of pcscd
//!   ([`Endpoint::Connect`], default `127.0.0.1:35963`, reconnecting with capped exponential
//!   backoff) or listens for a vpcd that dials out ([`Endpoint::Listen`]).
//!
//! The protocol (vsmartcard `vpcd.c`): vpcd sends `00` power off, `01` power on, `02` warm
//! reset (none of them answered) and `04` get ATR (answered with the ATR); any longer payload
//! is a C-APDU answered with the R-APDU. vpcd asks for the ATR on every presence poll.

use crate::VirtualCard;
use socket2::SockRef;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use thiserror::Error;
use tracing::{debug, info, warn};

/// TCP port of vpcd slot 0 (`Virtual PCD 00 00`); slot N listens on `35963 + N`.
pub const DEFAULT_PORT: u16 = 35963;
/// Largest payload a frame can carry (the length prefix is 16 bits).
pub const MAX_PAYLOAD: usize = u16::MAX as usize;
/// A vpcd control code (a 1-byte payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// `00`: power off; no reply.
    PowerOff,
    /// `01`: power on; no reply.
    PowerOn,
    /// `02`: warm reset; no reply.
    Reset,
    /// `04`: get ATR; reply with the ATR.
    GetAtr,
}

impl Control {
    /// The wire byte of this code.
    pub const fn code(self) -> u8 {
        match self {
            Control::PowerOff => 0x00,
            Control::PowerOn => 0x01,
            Control::Reset => 0x02,
            Control::GetAtr => 0x04,
        }
    }

    /// Decode a control byte; `None` for codes vpcd does not define.
    pub const fn from_code(code: u8) -> Option<Control> {
        match code {
            0x00 => Some(Control::PowerOff),
            0x01 => Some(Control::PowerOn),
            0x02 => Some(Control::Reset),
            0x04 => Some(Control::GetAtr),
            _ => None,
        }
    }
}

/// What one frame payload from vpcd asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// A 0-length frame: vpcd never sends one; ignored.
    Empty,
    /// A known control code.
    Control(Control),
    /// A 1-byte payload that is not a known control code; ignored.
    UnknownControl(u8),
    /// A C-APDU (2 bytes or more; the card judges whether it is well formed).
    Apdu(&'a [u8]),
}

impl<'a> Request<'a> {
    /// Classify a frame payload. Total: every payload is some request.
    pub fn parse(payload: &'a [u8]) -> Request<'a> {
        match payload {
            [] => Request::Empty,
            [code] => match Control::from_code(*code) {
                Some(c) => Request::Control(c),
                None => Request::UnknownControl(*code),
            },
            apdu => Request::Apdu(apdu),
        }
    }
}

/// Why a transport step failed.
#[derive(Debug, Error)]
pub enum VpcdError {
    #[error("a vpcd frame carries at most 65535 bytes, this payload has {0}")]
    PayloadTooLong(usize),
    #[error("cannot resolve vpcd address {addr:?}: {source}")]
    Resolve {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("vpcd address {0:?} resolves to no socket address")]
    NoAddress(String),
    #[error("invalid listen address {0:?}: expected IP:PORT or PORT (e.g. 127.0.0.1:35963)")]
    BadListenAddress(String),
    #[error("slot {0} is out of range: the port 35963 + slot must fit in 16 bits")]
    BadSlot(u16),
    #[error(
        "cannot listen on {addr}: {source}; is another card or pcscd already bound to that port?"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error(
        "vpcd closed the connection in the middle of a frame ({have} of {want} bytes received)"
    )]
    Truncated { have: usize, want: usize },
    #[error("vpcd connection failed: {0}")]
    Io(#[from] io::Error),
}

/// Build one frame: the 2-byte big-endian length, then the payload.
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, VpcdError> {
    let len = u16::try_from(payload.len()).map_err(|_| VpcdError::PayloadTooLong(payload.len()))?;
    let mut out = Vec::with_capacity(payload.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Cuts a byte stream into frame payloads; never panics, whatever the bytes.
///
/// The length prefix is 16 bits, so a frame can never claim more than [`MAX_PAYLOAD`]
/// bytes; a peer that lies about the length just leaves the frame incomplete, which
/// [`FrameDecoder::pending`] reports when the stream ends.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Append bytes received from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete payload, if the buffered bytes hold one.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        let avail = &self.buf[self.start..];
        let [hi, lo, rest @ ..] = avail else {
            return None;
        };
        let len = u16::from_be_bytes([*hi, *lo]) as usize;
        let payload = rest.get(..len)?.to_vec();
        self.start += 2 + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > MAX_PAYLOAD {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Some(payload)
    }

    /// `(have, want)` when an incomplete frame is buffered: bytes received so far,
    /// including the length prefix, and the bytes the frame needs in total.
    pub fn pending(&self) -> Option<(usize, usize)> {
        let avail = &self.buf[self.start..];
        match avail {
            [] => None,
            [_] => Some((1, 2)),
            [hi, lo, ..] => Some((avail.len(), 2 + u16::from_be_bytes([*hi, *lo]) as usize)),
        }
    }
}

/// What to log and how long to wait; `Default` is what `card-emulator run` wants.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Log every APDU at info level (otherwise at debug level, visible with `RUST_LOG=debug`).
    pub trace: bool,
    /// First reconnect delay after a failed dial.
    pub initial_backoff: Duration,
    /// Largest reconnect delay (the backoff doubles up to this).
    pub max_backoff: Duration,
    /// How often a blocked read or accept looks at the shutdown flag.
    pub poll_interval: Duration,
    /// How long one dial may take before it counts as failed.
    pub connect_timeout: Duration,
    /// In connect mode, dial again after vpcd goes away (pcscd restart); `false` returns instead.
    pub reconnect: bool,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            trace: false,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            poll_interval: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(1),
            reconnect: true,
        }
    }
}

/// Where the card meets vpcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Dial vpcd (pcscd listens): `HOST:PORT`, resolved again on every attempt.
    Connect(String),
    /// Listen for vpcd to dial out (vpcd reversed mode).
    Listen(SocketAddr),
}

impl Default for Endpoint {
    /// `127.0.0.1:35963`, slot 0 of a local pcscd.
    fn default() -> Endpoint {
        Endpoint::Connect(format!("127.0.0.1:{DEFAULT_PORT}"))
    }
}

impl Endpoint {
    /// Dial `HOST:PORT`.
    pub fn connect(addr: impl Into<String>) -> Endpoint {
        Endpoint::Connect(addr.into())
    }

    /// Dial slot `n` of the local pcscd: `127.0.0.1:35963+n`.
    pub fn slot(n: u16) -> Result<Endpoint, VpcdError> {
        let port = DEFAULT_PORT.checked_add(n).ok_or(VpcdError::BadSlot(n))?;
        Ok(Endpoint::Connect(format!("127.0.0.1:{port}")))
    }

    /// Listen on `IP:PORT`, or on `127.0.0.1:PORT` when only a port is given.
    pub fn listen(addr: &str) -> Result<Endpoint, VpcdError> {
        if let Ok(port) = addr.parse::<u16>() {
            return Ok(Endpoint::Listen(SocketAddr::from(([127, 0, 0, 1], port))));
        }
        addr.parse::<SocketAddr>()
            .map(Endpoint::Listen)
            .map_err(|_| VpcdError::BadListenAddress(addr.to_string()))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Connect(a) => write!(f, "connect to {a}"),
            Endpoint::Listen(a) => write!(f, "listen on {a}"),
        }
    }
}

/// How one vpcd connection ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The shutdown flag was raised.
    Shutdown,
    /// vpcd closed the connection between frames (pcscd stopped or restarted).
    PeerClosed,
}

/// Answer one frame payload from vpcd: `Some(reply payload)` or `None` when the
/// request takes no reply. This is the whole card side of the protocol, without I/O.
pub fn handle_frame(
    card: &mut dyn VirtualCard,
    payload: &[u8],
    opts: &ServeOptions,
) -> Option<Vec<u8>> {
    match Request::parse(payload) {
        Request::Empty => {
            warn!("vpcd sent an empty frame; ignored");
            None
        }
        Request::UnknownControl(code) => {
            warn!("vpcd sent unknown control code {code:02X}; ignored");
            None
        }
        Request::Control(Control::PowerOff) => {
            debug!("vpcd: power off");
            card.power_off();
            None
        }
        Request::Control(Control::PowerOn) => {
            debug!("vpcd: power on");
            card.power_on();
            None
        }
        Request::Control(Control::Reset) => {
            debug!("vpcd: warm reset");
            card.reset();
            None
        }
        Request::Control(Control::GetAtr) => Some(card.atr()),
        Request::Apdu(apdu) => {
            let t0 = Instant::now();
            let mut resp = card.transmit(apdu);
            let elapsed = t0.elapsed();
            if resp.len() > MAX_PAYLOAD {
                warn!(
                    "the card answered {} bytes, more than a vpcd frame carries; sending 6F00 instead",
                    resp.len()
                );
                resp = vec![0x6F, 0x00];
            } else if resp.len() < 2 {
                warn!(
                    "the card answered {} byte(s), not an R-APDU; sending 6F00 instead",
                    resp.len()
                );
                resp = vec![0x6F, 0x00];
            }
            crate::trace::exchange_at(opts.trace, apdu, &resp, elapsed);
            Some(resp)
        }
    }
}

/// Serve the card until the shutdown flag is raised: the entry point of `card-emulator run`.
///
/// Connect mode dials vpcd and dials again (capped exponential backoff) whenever pcscd is
/// not up yet or goes away, logging "waiting for vpcd" once per outage. Listen mode accepts
/// one vpcd connection at a time. When a connection ends the card is powered off (volatile
/// state cleared), as a real card pulled from its reader would be.
pub fn serve(
    card: &mut dyn VirtualCard,
    endpoint: Endpoint,
    opts: &ServeOptions,
    shutdown: &AtomicBool,
) -> Result<(), VpcdError> {
    match endpoint {
        Endpoint::Connect(addr) => serve_connect(card, &addr, opts, shutdown),
        Endpoint::Listen(addr) => {
            let listener =
                TcpListener::bind(addr).map_err(|source| VpcdError::Bind { addr, source })?;
            info!("listening for vpcd on {addr}");
            serve_listener(card, &listener, opts, shutdown)
        }
    }
}

fn serve_connect(
    card: &mut dyn VirtualCard,
    addr: &str,
    opts: &ServeOptions,
    shutdown: &AtomicBool,
) -> Result<(), VpcdError> {
    let mut backoff = opts.initial_backoff;
    let mut announced = false;
    while !shutdown.load(Ordering::SeqCst) {
        match dial(addr, opts.connect_timeout) {
            Ok(stream) => {
                info!("connected to vpcd at {addr}");
                announced = false;
                backoff = opts.initial_backoff;
                let end = serve_stream(card, stream, opts, shutdown);
                card.power_off();
                match end {
                    Ok(SessionEnd::Shutdown) => return Ok(()),
                    Ok(SessionEnd::PeerClosed) => {
                        info!("vpcd at {addr} closed the connection (pcscd stopped or restarted)")
                    }
                    Err(e) => warn!("vpcd connection lost: {e}"),
                }
                if !opts.reconnect {
                    return Ok(());
                }
            }
            Err(e @ (VpcdError::Resolve { .. } | VpcdError::NoAddress(_))) => return Err(e),
            Err(e) => {
                if !announced {
                    warn!(
                        "waiting for vpcd at {addr} ({e}); is pcscd running (pcscd --foreground, or \
                         systemctl start pcscd) with vsmartcard-vpcd installed? is a firewall blocking the port?"
                    );
                    announced = true;
                }
                debug!("vpcd dial failed: {e}; next try in {backoff:?}");
                sleep_unless_shutdown(backoff, opts.poll_interval, shutdown);
                backoff = (backoff * 2).min(opts.max_backoff);
            }
        }
    }
    Ok(())
}

fn dial(addr: &str, timeout: Duration) -> Result<TcpStream, VpcdError> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|source| VpcdError::Resolve {
            addr: addr.to_string(),
            source,
        })?
        .collect();
    let mut last = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .map(VpcdError::Io)
        .unwrap_or_else(|| VpcdError::NoAddress(addr.to_string())))
}

fn sleep_unless_shutdown(total: Duration, slice: Duration, shutdown: &AtomicBool) {
    let deadline = Instant::now() + total;
    let slice = slice.max(Duration::from_millis(1));
    loop {
        if shutdown.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep((deadline - now).min(slice));
    }
}

/// Accept vpcd connections on `listener`, one at a time, until the shutdown flag is raised.
pub fn serve_listener(
    card: &mut dyn VirtualCard,
    listener: &TcpListener,
    opts: &ServeOptions,
    shutdown: &AtomicBool,
) -> Result<(), VpcdError> {
    // std has no accept timeout: poll a non-blocking accept so the flag is seen in time.
    listener.set_nonblocking(true)?;
    let accept_poll = (opts.poll_interval / 4).max(Duration::from_millis(1));
    while !shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                stream.set_nonblocking(false)?;
                info!("vpcd connected from {peer}");
                let end = serve_stream(card, stream, opts, shutdown);
                card.power_off();
                match end {
                    Ok(SessionEnd::Shutdown) => return Ok(()),
                    Ok(SessionEnd::PeerClosed) => info!("vpcd from {peer} closed the connection"),
                    Err(e) => warn!("vpcd connection from {peer} lost: {e}"),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(accept_poll),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Serve one established vpcd connection until it closes or the shutdown flag is raised.
pub fn serve_stream(
    card: &mut dyn VirtualCard,
    mut stream: TcpStream,
    opts: &ServeOptions,
    shutdown: &AtomicBool,
) -> Result<SessionEnd, VpcdError> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(opts.poll_interval.max(Duration::from_millis(1))))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 2 + MAX_PAYLOAD];
    loop {
        while let Some(payload) = decoder.next_frame() {
            if let Some(reply) = handle_frame(card, &payload, opts) {
                // One write for length + payload: no small-segment stall on the peer.
                let frame = encode_frame(&reply)?;
                stream.write_all(&frame)?;
            }
        }
        if shutdown.load(Ordering::SeqCst) {
            return Ok(SessionEnd::Shutdown);
        }
        rearm_quickack(&stream);
        match stream.read(&mut buf) {
            Ok(0) => {
                return match decoder.pending() {
                    None => Ok(SessionEnd::PeerClosed),
                    Some((have, want)) => Err(VpcdError::Truncated { have, want }),
                }
            }
            Ok(n) => decoder.push(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Delayed ACKs on our side stall vpcd's two-write frames ~40 ms each; TCP_QUICKACK
/// is not sticky, so it is set again before every read.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
fn rearm_quickack(stream: &TcpStream) {
    if let Err(e) = SockRef::from(stream).set_quickack(true) {
        debug!("cannot set TCP_QUICKACK: {e}");
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia")))]
fn rearm_quickack(stream: &TcpStream) {
    let _ = SockRef::from(stream);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc, Arc, Mutex};

    /// Records what the transport asked of it; answers `9000` + the APDU's INS.
    #[derive(Default)]
    struct FakeCard {
        log: Arc<Mutex<Vec<String>>>,
    }

    impl FakeCard {
        fn note(&self, s: String) {
            if let Ok(mut l) = self.log.lock() {
                l.push(s);
            }
        }
    }

    const ATR: [u8; 4] = [0x3B, 0x80, 0x80, 0x01];

    impl VirtualCard for FakeCard {
        fn atr(&self) -> Vec<u8> {
            ATR.to_vec()
        }
        fn power_on(&mut self) -> Vec<u8> {
            self.note("on".into());
            ATR.to_vec()
        }
        fn power_off(&mut self) {
            self.note("off".into());
        }
        fn reset(&mut self) -> Vec<u8> {
            self.note("reset".into());
            ATR.to_vec()
        }
        fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
            self.note(format!("apdu {}", apdu_specs::hexfmt::upper(apdu)));
            match apdu.get(1) {
                // INS FE: answer a response as long as P1P2 says (for size tests).
                Some(0xFE) => {
                    let n = u16::from_be_bytes([apdu[2], apdu[3]]) as usize;
                    let mut r = vec![0x5A; n];
                    r.extend([0x90, 0x00]);
                    r
                }
                // INS FD: a broken card answering nothing.
                Some(0xFD) => Vec::new(),
                Some(ins) => vec![*ins, 0x90, 0x00],
                None => vec![0x67, 0x00],
            }
        }
    }

    fn opts() -> ServeOptions {
        ServeOptions {
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(40),
            poll_interval: Duration::from_millis(20),
            ..ServeOptions::default()
        }
    }

    // ---- codec ----

    #[test]
    fn encode_frame_prefixes_big_endian_length() {
        assert_eq!(encode_frame(&[0x04]).unwrap(), vec![0, 1, 4]);
        assert_eq!(encode_frame(&[]).unwrap(), vec![0, 0]);
        let big = vec![7u8; MAX_PAYLOAD];
        let f = encode_frame(&big).unwrap();
        assert_eq!(&f[..2], &[0xFF, 0xFF]);
        assert_eq!(f.len(), MAX_PAYLOAD + 2);
    }

    #[test]
    fn encode_frame_refuses_payload_over_65535() {
        let big = vec![0u8; MAX_PAYLOAD + 1];
        assert!(matches!(
            encode_frame(&big),
            Err(VpcdError::PayloadTooLong(65536))
        ));
    }

    #[test]
    fn decoder_reassembles_frames_split_at_every_byte() {
        let mut stream = Vec::new();
        stream.extend(encode_frame(&[0x01]).unwrap());
        stream.extend(encode_frame(&[0x00, 0xA4, 0x04, 0x00, 0x00]).unwrap());
        stream.extend(encode_frame(&[]).unwrap());
        stream.extend(encode_frame(&[0x04]).unwrap());
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        for b in &stream {
            d.push(std::slice::from_ref(b));
            while let Some(f) = d.next_frame() {
                got.push(f);
            }
        }
        assert_eq!(got, vec![vec![1], vec![0, 0xA4, 4, 0, 0], vec![], vec![4]]);
        assert_eq!(d.pending(), None);
    }

    #[test]
    fn decoder_yields_several_frames_from_one_push() {
        let mut stream = encode_frame(&[0x04]).unwrap();
        stream.extend(encode_frame(&[0x02]).unwrap());
        let mut d = FrameDecoder::new();
        d.push(&stream);
        assert_eq!(d.next_frame(), Some(vec![4]));
        assert_eq!(d.next_frame(), Some(vec![2]));
        assert_eq!(d.next_frame(), None);
    }

    #[test]
    fn decoder_reports_a_frame_whose_length_lies() {
        let mut d = FrameDecoder::new();
        d.push(&[0xFF, 0xFF, 1, 2, 3]);
        assert_eq!(d.next_frame(), None);
        assert_eq!(d.pending(), Some((5, 65537)));
        let mut d = FrameDecoder::new();
        d.push(&[0x00]);
        assert_eq!(d.pending(), Some((1, 2)));
    }

    #[test]
    fn decoder_handles_max_size_frames_back_to_back() {
        let big = vec![0xA5u8; MAX_PAYLOAD];
        let mut d = FrameDecoder::new();
        for _ in 0..3 {
            let f = encode_frame(&big).unwrap();
            d.push(&f[..1000]);
            assert_eq!(d.next_frame(), None);
            d.push(&f[1000..]);
            assert_eq!(d.next_frame().map(|p| p.len()), Some(MAX_PAYLOAD));
        }
        assert_eq!(d.pending(), None);
    }

    #[test]
    fn request_classifies_payloads() {
        assert_eq!(Request::parse(&[]), Request::Empty);
        assert_eq!(Request::parse(&[0]), Request::Control(Control::PowerOff));
        assert_eq!(Request::parse(&[1]), Request::Control(Control::PowerOn));
        assert_eq!(Request::parse(&[2]), Request::Control(Control::Reset));
        assert_eq!(Request::parse(&[4]), Request::Control(Control::GetAtr));
        assert_eq!(Request::parse(&[3]), Request::UnknownControl(3));
        assert_eq!(Request::parse(&[0, 0xB0]), Request::Apdu(&[0, 0xB0]));
        for c in [
            Control::PowerOff,
            Control::PowerOn,
            Control::Reset,
            Control::GetAtr,
        ] {
            assert_eq!(Control::from_code(c.code()), Some(c));
        }
    }

    #[test]
    fn handle_frame_answers_only_get_atr_and_apdus() {
        let mut card = FakeCard::default();
        let o = opts();
        assert_eq!(handle_frame(&mut card, &[0x01], &o), None);
        assert_eq!(handle_frame(&mut card, &[0x02], &o), None);
        assert_eq!(handle_frame(&mut card, &[0x00], &o), None);
        assert_eq!(handle_frame(&mut card, &[0x04], &o), Some(ATR.to_vec()));
        assert_eq!(handle_frame(&mut card, &[0x09], &o), None);
        assert_eq!(handle_frame(&mut card, &[], &o), None);
        assert_eq!(
            handle_frame(&mut card, &[0x00, 0xA4, 0x04, 0x00], &o),
            Some(vec![0xA4, 0x90, 0x00])
        );
        let log = card.log.lock().unwrap().clone();
        assert_eq!(log, vec!["on", "reset", "off", "apdu 00A40400"]);
    }

    #[test]
    fn handle_frame_replaces_unframeable_or_empty_responses_with_6f00() {
        let mut card = FakeCard::default();
        let o = opts();
        assert_eq!(
            handle_frame(&mut card, &[0x00, 0xFD, 0, 0], &o),
            Some(vec![0x6F, 0x00])
        );
        // 65534 data bytes + SW = 65536 bytes: one too many for a frame.
        assert_eq!(
            handle_frame(&mut card, &[0x00, 0xFE, 0xFF, 0xFE], &o),
            Some(vec![0x6F, 0x00])
        );
        // 65533 + 2 = 65535: exactly fits.
        assert_eq!(
            handle_frame(&mut card, &[0x00, 0xFE, 0xFF, 0xFD], &o).map(|r| r.len()),
            Some(MAX_PAYLOAD)
        );
    }

    #[test]
    fn endpoints_parse_slots_and_listen_addresses() {
        assert_eq!(Endpoint::default(), Endpoint::connect("127.0.0.1:35963"));
        assert_eq!(
            Endpoint::slot(1).unwrap(),
            Endpoint::connect("127.0.0.1:35964")
        );
        assert!(matches!(
            Endpoint::slot(u16::MAX),
            Err(VpcdError::BadSlot(_))
        ));
        assert_eq!(
            Endpoint::listen("35963").unwrap(),
            Endpoint::Listen("127.0.0.1:35963".parse().unwrap())
        );
        assert_eq!(
            Endpoint::listen("127.0.0.1:4000").unwrap(),
            Endpoint::Listen("127.0.0.1:4000".parse().unwrap())
        );
        assert!(Endpoint::listen("nonsense").is_err());
    }

    // ---- driver against a fake vpcd on loopback ----

    /// The vpcd side of one connection.
    struct FakeVpcd {
        s: TcpStream,
    }

    impl FakeVpcd {
        fn new(s: TcpStream) -> FakeVpcd {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            FakeVpcd { s }
        }
        /// Send like Debian's vpcd: length and payload in two writes.
        fn send(&mut self, payload: &[u8]) {
            let f = encode_frame(payload).unwrap();
            self.s.write_all(&f[..2]).unwrap();
            self.s.write_all(&f[2..]).unwrap();
        }
        fn recv(&mut self) -> Vec<u8> {
            let mut len = [0u8; 2];
            self.s.read_exact(&mut len).unwrap();
            let mut p = vec![0u8; u16::from_be_bytes(len) as usize];
            self.s.read_exact(&mut p).unwrap();
            p
        }
        fn call(&mut self, payload: &[u8]) -> Vec<u8> {
            self.send(payload);
            self.recv()
        }
    }

    type CardLog = Arc<Mutex<Vec<String>>>;
    type Done = mpsc::Receiver<Result<(), String>>;

    /// Run `serve` on a thread; the receiver fires when it returns.
    fn spawn_serve(endpoint: Endpoint, o: ServeOptions) -> (Arc<AtomicBool>, CardLog, Done) {
        let shutdown = Arc::new(AtomicBool::new(false));
        let card = FakeCard::default();
        let log = card.log.clone();
        let (tx, rx) = mpsc::channel();
        let flag = shutdown.clone();
        std::thread::spawn(move || {
            let mut card = card;
            let r = serve(&mut card, endpoint, &o, &flag).map_err(|e| e.to_string());
            let _ = tx.send(r);
        });
        (shutdown, log, rx)
    }

    /// Accept one connection within `limit` (a helper thread blocks in accept).
    fn accept_within(l: &TcpListener, limit: Duration) -> TcpStream {
        let l = l.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(l.accept().map(|(s, _)| s));
        });
        rx.recv_timeout(limit)
            .expect("the card did not dial in time")
            .unwrap()
    }

    #[test]
    fn connect_mode_answers_control_codes_and_apdus_then_stops_on_shutdown() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (shutdown, log, done) = spawn_serve(Endpoint::connect(addr.to_string()), opts());
        let mut v = FakeVpcd::new(accept_within(&l, Duration::from_secs(10)));
        assert_eq!(v.call(&[0x04]), ATR.to_vec());
        v.send(&[0x01]);
        assert_eq!(
            v.call(&[0x00, 0xA4, 0x04, 0x00, 0x00]),
            vec![0xA4, 0x90, 0x00]
        );
        // An extended APDU near the frame limit both ways.
        let mut ext = vec![0x00, 0xFE, 0xFF, 0xF0, 0x00, 0xFF, 0xF0];
        ext.extend(vec![0x11; 0xFFF0]);
        let r = v.call(&ext);
        assert_eq!(r.len(), 0xFFF0 + 2);
        assert_eq!(&r[r.len() - 2..], &[0x90, 0x00]);
        v.send(&[0x02]);
        assert_eq!(v.call(&[0x04]), ATR.to_vec());
        let t0 = Instant::now();
        shutdown.store(true, Ordering::SeqCst);
        let r = done
            .recv_timeout(Duration::from_secs(5))
            .expect("serve did not stop");
        assert_eq!(r, Ok(()));
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "stop took {:?}",
            t0.elapsed()
        );
        let log = log.lock().unwrap().clone();
        assert_eq!(log[0], "on");
        assert!(log.contains(&"reset".to_string()));
        assert_eq!(log.last().map(String::as_str), Some("off"));
    }

    #[test]
    fn connect_mode_reconnects_after_vpcd_goes_away_and_powers_the_card_off() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (shutdown, log, done) = spawn_serve(Endpoint::connect(addr.to_string()), opts());
        let mut v = FakeVpcd::new(accept_within(&l, Duration::from_secs(10)));
        v.send(&[0x01]);
        assert_eq!(
            v.call(&[0x00, 0xB0, 0x00, 0x00, 0x00]),
            vec![0xB0, 0x90, 0x00]
        );
        drop(v);
        let mut v = FakeVpcd::new(accept_within(&l, Duration::from_secs(10)));
        assert_eq!(v.call(&[0x04]), ATR.to_vec());
        {
            let log = log.lock().unwrap();
            assert_eq!(log.iter().filter(|e| *e == "off").count(), 1, "{log:?}");
        }
        shutdown.store(true, Ordering::SeqCst);
        assert_eq!(done.recv_timeout(Duration::from_secs(5)).unwrap(), Ok(()));
    }

    #[test]
    fn connect_mode_waits_for_vpcd_to_come_up_and_says_so_once() {
        // Reserve a free port, close it: the card's first dials are refused.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let (line_tx, line_rx) = mpsc::channel::<String>();
        let shutdown = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        {
            let (flag, addr) = (shutdown.clone(), addr.clone());
            std::thread::spawn(move || {
                let writer = move || CaptureWriter(line_tx.clone());
                let sub = tracing_subscriber::fmt()
                    .with_max_level(tracing::Level::DEBUG)
                    .with_writer(writer)
                    .with_ansi(false)
                    .finish();
                let mut card = FakeCard::default();
                let r = tracing::subscriber::with_default(sub, || {
                    serve(&mut card, Endpoint::connect(addr), &opts(), &flag)
                });
                let _ = tx.send(r.map_err(|e| e.to_string()));
            });
        }
        // Wait until the card has retried several times (a real signal: its debug lines).
        let mut text = String::new();
        while text.matches("vpcd dial failed").count() < 4 {
            let line = line_rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no retries seen: {text}"));
            text.push_str(&line);
        }
        let l = TcpListener::bind(&addr).unwrap();
        let mut v = FakeVpcd::new(accept_within(&l, Duration::from_secs(10)));
        assert_eq!(v.call(&[0x04]), ATR.to_vec());
        shutdown.store(true, Ordering::SeqCst);
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Ok(()));
        text.extend(line_rx.try_iter());
        assert_eq!(text.matches("waiting for vpcd").count(), 1, "{text}");
    }

    #[test]
    fn listen_mode_serves_a_vpcd_that_dials_in_and_the_next_one() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let shutdown = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let flag = shutdown.clone();
        std::thread::spawn(move || {
            let mut card = FakeCard::default();
            let _ =
                tx.send(serve_listener(&mut card, &l, &opts(), &flag).map_err(|e| e.to_string()));
        });
        for _ in 0..2 {
            let mut v = FakeVpcd::new(TcpStream::connect(addr).unwrap());
            assert_eq!(v.call(&[0x04]), ATR.to_vec());
            v.send(&[0x01]);
            assert_eq!(
                v.call(&[0x80, 0xCA, 0x00, 0x66, 0x00]),
                vec![0xCA, 0x90, 0x00]
            );
        }
        shutdown.store(true, Ordering::SeqCst);
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Ok(()));
    }

    #[test]
    fn truncated_frame_then_close_is_an_error_not_a_panic_and_the_card_redials() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (shutdown, _log, done) = spawn_serve(Endpoint::connect(addr.to_string()), opts());
        let mut s = accept_within(&l, Duration::from_secs(10));
        // Claims 300 bytes, sends 3, hangs up.
        s.write_all(&[0x01, 0x2C, 0x00, 0xA4, 0x04]).unwrap();
        drop(s);
        let mut v = FakeVpcd::new(accept_within(&l, Duration::from_secs(10)));
        assert_eq!(v.call(&[0x04]), ATR.to_vec());
        shutdown.store(true, Ordering::SeqCst);
        assert_eq!(done.recv_timeout(Duration::from_secs(5)).unwrap(), Ok(()));
    }

    #[test]
    fn without_reconnect_serve_returns_when_vpcd_closes() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let o = ServeOptions {
            reconnect: false,
            ..opts()
        };
        let (_shutdown, _log, done) = spawn_serve(Endpoint::connect(addr.to_string()), o);
        let mut v = FakeVpcd::new(accept_within(&l, Duration::from_secs(10)));
        assert_eq!(v.call(&[0x04]), ATR.to_vec());
        drop(v);
        assert_eq!(done.recv_timeout(Duration::from_secs(5)).unwrap(), Ok(()));
    }

    #[test]
    fn unresolvable_host_is_an_error() {
        let shutdown = AtomicBool::new(false);
        let mut card = FakeCard::default();
        let r = serve(
            &mut card,
            Endpoint::connect("no-port-given"),
            &opts(),
            &shutdown,
        );
        assert!(matches!(r, Err(VpcdError::Resolve { .. })), "{r:?}");
    }

    /// Sends tracing output to the test thread, one write per message.
    struct CaptureWriter(mpsc::Sender<String>);

    impl Write for CaptureWriter {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let _ = self.0.send(String::from_utf8_lossy(b).into_owned());
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
