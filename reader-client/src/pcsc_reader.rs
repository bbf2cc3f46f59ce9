//! PC/SC through pcsc-lite: listing readers, choosing one, and a [`Transport`] over a connected card.

use crate::{ClientError, Transport};
use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};
use std::ffi::CString;
use std::time::{Duration, Instant};

/// One reader as pcscd reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderInfo {
    pub index: usize,
    pub name: String,
    pub card_present: bool,
    /// The ATR pcscd saw for the card in the reader (empty without a card).
    pub atr: Vec<u8>,
    /// Another application holds the card exclusively.
    pub exclusive: bool,
}

/// A PC/SC context (a connection to pcscd).
pub struct Pcsc {
    ctx: Context,
}

impl Pcsc {
    /// Connect to pcscd.
    pub fn establish() -> Result<Pcsc, ClientError> {
        let ctx =
            Context::establish(Scope::User).map_err(|e| ClientError::pcsc("establish", "", e))?;
        Ok(Pcsc { ctx })
    }

    /// Every reader with its card state (one status query, no waiting).
    pub fn readers(&self) -> Result<Vec<ReaderInfo>, ClientError> {
        let names = match self.ctx.list_readers_owned() {
            Ok(n) => n,
            Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
            Err(e) => return Err(ClientError::pcsc("list readers", "", e)),
        };
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut states: Vec<ReaderState> = names
            .iter()
            .map(|n| ReaderState::new(n.clone(), State::UNAWARE))
            .collect();
        self.ctx
            .get_status_change(Duration::ZERO, &mut states)
            .map_err(|e| ClientError::pcsc("get status", "", e))?;
        Ok(states
            .iter()
            .enumerate()
            .map(|(index, s)| {
                let ev = s.event_state();
                ReaderInfo {
                    index,
                    name: s.name().to_string_lossy().into_owned(),
                    card_present: ev.contains(State::PRESENT) && !ev.contains(State::MUTE),
                    atr: if ev.contains(State::PRESENT) {
                        s.atr().to_vec()
                    } else {
                        Vec::new()
                    },
                    exclusive: ev.contains(State::EXCLUSIVE),
                }
            })
            .collect())
    }

    /// Choose a reader: `selector` is an index or a name substring (case-insensitive);
    /// without one, the first reader holding a card.
    pub fn choose(&self, selector: Option<&str>) -> Result<ReaderInfo, ClientError> {
        choose_reader(&self.readers()?, selector)
    }

    /// Wait until `selector`'s reader (or any reader) holds a card, polling pcscd until `timeout`.
    pub fn wait_for_card(
        &self,
        selector: Option<&str>,
        timeout: Duration,
    ) -> Result<ReaderInfo, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.choose(selector) {
                Ok(r) if r.card_present => return Ok(r),
                Ok(_)
                | Err(ClientError::NoCard(_) | ClientError::NoCardIn(_) | ClientError::NoReaders) =>
                    {}
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            if now >= deadline {
                return self.choose(selector).and_then(|r| {
                    if r.card_present {
                        Ok(r)
                    } else {
                        Err(ClientError::NoCardIn(r.name))
                    }
                });
            }
            self.wait_for_change((deadline - now).min(Duration::from_millis(500)));
        }
    }

    /// Block in pcscd until any reader changes state (or a reader comes or goes), at most `timeout`.
    pub fn wait_for_change(&self, timeout: Duration) {
        let names: Vec<CString> = self.ctx.list_readers_owned().unwrap_or_default();
        let mut states: Vec<ReaderState> = names
            .into_iter()
            .map(|n| ReaderState::new(n, State::UNAWARE))
            .collect();
        states.push(ReaderState::new(pcsc::PNP_NOTIFICATION(), State::UNAWARE));
        if self
            .ctx
            .get_status_change(Duration::ZERO, &mut states)
            .is_ok()
        {
            for s in &mut states {
                s.sync_current_state();
            }
            let _ = self.ctx.get_status_change(timeout, &mut states);
        } else {
            // pcscd refused the query (going down?): do not spin.
            std::thread::sleep(timeout.min(Duration::from_millis(50)));
        }
    }

    /// Connect shared, T=0 or T=1, to the named reader.
    pub fn connect(&self, reader: &str) -> Result<PcscCard, ClientError> {
        let cname = CString::new(reader).map_err(|_| ClientError::NoSuchReader {
            wanted: reader.to_string(),
            available: String::new(),
        })?;
        let card = self
            .ctx
            .connect(&cname, ShareMode::Shared, Protocols::T0 | Protocols::T1)
            .map_err(|e| ClientError::pcsc("connect", reader, e))?;
        Ok(PcscCard {
            card,
            reader: reader.to_string(),
            buf: vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        })
    }

    /// [`Pcsc::choose`] then [`Pcsc::connect`].
    pub fn open(&self, selector: Option<&str>) -> Result<PcscCard, ClientError> {
        let r = self.choose(selector)?;
        if !r.card_present {
            return Err(ClientError::NoCardIn(r.name));
        }
        self.connect(&r.name)
    }
}

/// The selection rule of [`Pcsc::choose`], on a reader list.
pub fn choose_reader(
    readers: &[ReaderInfo],
    selector: Option<&str>,
) -> Result<ReaderInfo, ClientError> {
    if readers.is_empty() {
        return Err(ClientError::NoReaders);
    }
    let names = || {
        readers
            .iter()
            .map(|r| format!("{}: {}", r.index, r.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match selector {
        None => readers
            .iter()
            .find(|r| r.card_present)
            .cloned()
            .ok_or_else(|| ClientError::NoCard(names())),
        Some(sel) => {
            if let Ok(i) = sel.trim().parse::<usize>() {
                if let Some(r) = readers.get(i) {
                    return Ok(r.clone());
                }
            }
            let want = sel.to_lowercase();
            if let Some(r) = readers.iter().find(|r| r.name == sel) {
                return Ok(r.clone());
            }
            let matching: Vec<&ReaderInfo> = readers
                .iter()
                .filter(|r| r.name.to_lowercase().contains(&want))
                .collect();
            matching
                .iter()
                .find(|r| r.card_present)
                .or(matching.first())
                .map(|r| (*r).clone())
                .ok_or_else(|| ClientError::NoSuchReader {
                    wanted: sel.to_string(),
                    available: names(),
                })
        }
    }
}

/// A card connected through pcscd.
pub struct PcscCard {
    card: pcsc::Card,
    reader: String,
    buf: Vec<u8>,
}

impl PcscCard {
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The ATR and active protocol as pcscd reports them.
    pub fn status(&self) -> Result<(Vec<u8>, Option<pcsc::Protocol>), ClientError> {
        let st = self
            .card
            .status2_owned()
            .map_err(|e| ClientError::pcsc("status", &self.reader, e))?;
        Ok((st.atr().to_vec(), st.protocol2()))
    }

    /// Leave the card as it is and disconnect.
    pub fn disconnect(self) -> Result<(), ClientError> {
        let reader = self.reader.clone();
        self.card
            .disconnect(Disposition::LeaveCard)
            .map_err(|(_, e)| ClientError::pcsc("disconnect", &reader, e))
    }
}

impl Transport for PcscCard {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ClientError> {
        let r = self
            .card
            .transmit(apdu, &mut self.buf)
            .map_err(|e| ClientError::pcsc("transmit", &self.reader, e))?;
        Ok(r.to_vec())
    }

    fn reset(&mut self) -> Result<Vec<u8>, ClientError> {
        self.card
            .reconnect(
                ShareMode::Shared,
                Protocols::T0 | Protocols::T1,
                Disposition::ResetCard,
            )
            .map_err(|e| ClientError::pcsc("reset", &self.reader, e))?;
        Ok(self.status()?.0)
    }

    fn name(&self) -> String {
        self.reader.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(index: usize, name: &str, card: bool) -> ReaderInfo {
        ReaderInfo {
            index,
            name: name.into(),
            card_present: card,
            atr: Vec::new(),
            exclusive: false,
        }
    }

    #[test]
    fn default_is_the_first_reader_with_a_card() {
        let rs = [
            r(0, "Virtual PCD 00 00", false),
            r(1, "Virtual PCD 00 01", true),
        ];
        assert_eq!(choose_reader(&rs, None).unwrap().index, 1);
        let none = [r(0, "Virtual PCD 00 00", false)];
        let e = choose_reader(&none, None).unwrap_err().to_string();
        assert!(e.contains("card-emulator run"), "{e}");
    }

    #[test]
    fn selects_by_index_or_case_insensitive_substring() {
        let rs = [
            r(0, "Virtual PCD 00 00", false),
            r(1, "Virtual PCD 00 01", true),
        ];
        assert_eq!(choose_reader(&rs, Some("0")).unwrap().index, 0);
        assert_eq!(choose_reader(&rs, Some("00 01")).unwrap().index, 1);
        assert_eq!(choose_reader(&rs, Some("virtual")).unwrap().index, 1);
        assert_eq!(
            choose_reader(&rs, Some("Virtual PCD 00 00")).unwrap().index,
            0
        );
        let e = choose_reader(&rs, Some("yubikey")).unwrap_err().to_string();
        assert!(e.contains("0: Virtual PCD 00 00"), "{e}");
    }

    #[test]
    fn no_readers_says_what_to_install() {
        let e = choose_reader(&[], None).unwrap_err().to_string();
        assert!(e.contains("vsmartcard-vpcd"), "{e}");
    }
}
