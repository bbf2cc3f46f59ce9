//! The `Transport` trait (bytes in, bytes out, reset) and its in-process and tracing (PIN-redacting) forms.

use crate::ClientError;
use apdu_specs::VirtualCard;
use std::io::Write;
use std::time::{Duration, Instant};

/// A channel to one card: what PC/SC, an in-process card and secure-messaging layers share.
pub trait Transport {
    /// Send one C-APDU, return the whole R-APDU (data + SW1 SW2).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ClientError>;
    /// Warm-reset the card; returns the ATR.
    fn reset(&mut self) -> Result<Vec<u8>, ClientError>;
    /// A human name for reports ("Virtual PCD 00 00", "in-process").
    fn name(&self) -> String;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ClientError> {
        (**self).transmit(apdu)
    }
    fn reset(&mut self) -> Result<Vec<u8>, ClientError> {
        (**self).reset()
    }
    fn name(&self) -> String {
        (**self).name()
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ClientError> {
        (**self).transmit(apdu)
    }
    fn reset(&mut self) -> Result<Vec<u8>, ClientError> {
        (**self).reset()
    }
    fn name(&self) -> String {
        (**self).name()
    }
}

/// Any [`VirtualCard`] driven directly, without pcscd: for `cargo test` and `--in-process`.
pub struct InProcess<C: VirtualCard> {
    card: C,
}

impl<C: VirtualCard> InProcess<C> {
    /// Power the card on and wrap it.
    pub fn new(mut card: C) -> InProcess<C> {
        card.power_on();
        InProcess { card }
    }

    pub fn card(&self) -> &C {
        &self.card
    }

    pub fn card_mut(&mut self) -> &mut C {
        &mut self.card
    }

    /// Power the card off and hand it back.
    pub fn into_inner(mut self) -> C {
        self.card.power_off();
        self.card
    }
}

impl<C: VirtualCard> Transport for InProcess<C> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ClientError> {
        let r = self.card.transmit(apdu);
        if r.len() < 2 {
            return Err(ClientError::ShortResponse(r.len()));
        }
        Ok(r)
    }
    fn reset(&mut self) -> Result<Vec<u8>, ClientError> {
        Ok(self.card.reset())
    }
    fn name(&self) -> String {
        "in-process".to_string()
    }
}

/// A decorator printing every APDU, its answer and the time it took (`--trace`).
pub struct Traced<T: Transport, W: Write> {
    inner: T,
    out: W,
}

impl<T: Transport, W: Write> Traced<T, W> {
    pub fn new(inner: T, out: W) -> Traced<T, W> {
        Traced { inner, out }
    }
    pub fn into_inner(self) -> T {
        self.inner
    }
}

/// `1.234 ms` style durations for traces and tables.
pub fn fmt_duration(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

impl<T: Transport, W: Write> Transport for Traced<T, W> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ClientError> {
        // Secret-bearing commands (PINs, keys): header and length only, as the card's trace.
        let shown =
            apdu_specs::ins::redacted(apdu).unwrap_or_else(|| apdu_specs::hexfmt::spaced(apdu));
        let _ = writeln!(self.out, "=> {shown}");
        let t0 = Instant::now();
        let r = self.inner.transmit(apdu);
        let dt = fmt_duration(t0.elapsed());
        let _ = match &r {
            Ok(resp) => {
                let (data, sw) = resp.split_at(resp.len().saturating_sub(2));
                let status = match sw {
                    [a, b] => {
                        apdu_specs::Status::from_u16(u16::from_be_bytes([*a, *b])).to_string()
                    }
                    _ => String::new(),
                };
                if data.is_empty() {
                    writeln!(self.out, "<= {status} ({dt})")
                } else {
                    writeln!(
                        self.out,
                        "<= {} {status} ({dt})",
                        apdu_specs::hexfmt::spaced(data)
                    )
                }
            }
            Err(e) => writeln!(self.out, "<= error: {e} ({dt})"),
        };
        r
    }
    fn reset(&mut self) -> Result<Vec<u8>, ClientError> {
        let _ = writeln!(self.out, "=> RESET");
        let t0 = Instant::now();
        let r = self.inner.reset();
        let dt = fmt_duration(t0.elapsed());
        let _ = match &r {
            Ok(atr) => writeln!(
                self.out,
                "<= ATR {} ({dt})",
                apdu_specs::hexfmt::spaced(atr)
            ),
            Err(e) => writeln!(self.out, "<= error: {e} ({dt})"),
        };
        r
    }
    fn name(&self) -> String {
        self.inner.name()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A scripted card for the library's tests: answers from a function of the APDU.
    pub struct FnCard<F: FnMut(&[u8]) -> Vec<u8>> {
        pub f: F,
        pub resets: usize,
    }

    impl<F: FnMut(&[u8]) -> Vec<u8>> VirtualCard for FnCard<F> {
        fn atr(&self) -> Vec<u8> {
            vec![0x3B, 0x00]
        }
        fn power_on(&mut self) -> Vec<u8> {
            self.atr()
        }
        fn power_off(&mut self) {}
        fn reset(&mut self) -> Vec<u8> {
            self.resets += 1;
            self.atr()
        }
        fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
            (self.f)(apdu)
        }
    }

    pub fn fn_card<F: FnMut(&[u8]) -> Vec<u8>>(f: F) -> InProcess<FnCard<F>> {
        InProcess::new(FnCard { f, resets: 0 })
    }

    #[test]
    fn traced_prints_command_response_status_and_time() {
        let mut out = Vec::new();
        {
            let mut t = Traced::new(fn_card(|_| vec![0x01, 0x6A, 0x82]), &mut out);
            t.transmit(&[0x00, 0xA4, 0x00, 0x00]).unwrap();
            t.reset().unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("=> 00 A4 00 00\n"), "{text}");
        assert!(
            text.contains("<= 01 6A82 file or application not found ("),
            "{text}"
        );
        assert!(text.contains(" ms)"), "{text}");
        assert!(text.contains("<= ATR 3B 00"), "{text}");
    }

    #[test]
    fn traced_redacts_pin_data() {
        let mut out = Vec::new();
        {
            let mut t = Traced::new(fn_card(|_| vec![0x90, 0x00]), &mut out);
            t.transmit(&[0x00, 0x20, 0x00, 0x81, 0x04, 0x31, 0x32, 0x33, 0x34])
                .unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("=> 00200081 <5 byte(s) redacted>"), "{text}");
        assert!(!text.contains("31"), "{text}");
    }

    #[test]
    fn in_process_refuses_responses_without_status() {
        let mut t = fn_card(|_| vec![0x90]);
        assert!(matches!(
            t.transmit(&[0, 0, 0, 0]),
            Err(ClientError::ShortResponse(1))
        ));
    }
}
