//! Test double: a GlobalPlatform security domain made of secure-channel's card side in front of the in-process card.
//!
//! INITIALIZE UPDATE and EXTERNAL AUTHENTICATE are answered by secure-channel's [`AnySession`];
//! afterwards every command is unwrapped, answered by the GP hook or by the real
//! [`card_emulator::Card`] (its `61xx` chunks joined), wrapped whole, and then split into
//! `61xx` chunks of `chunk` bytes served by GET RESPONSE in the clear. PUT KEY is
//! implemented here (decrypt, check the KCVs, replace the keys) so a test can re-open
//! the channel with the new keys.

use crate::exchange::get_response_for;
use crate::scp::ScpVersion;
use apdu_specs::es10::GP_ISD_AID;
use apdu_specs::ins::{gp as gp_ins, iso};
use apdu_specs::{gp, Command};
use card_emulator::{profile, Card, VirtualCard};
use secure_channel::{
    kcv_aes, kcv_des3, scp02, scp03, AnySession, CardChallenge, CardConfig, CardSecureChannel,
    InitializeUpdate, StaticKeys,
};

/// Plain command in, plain answer (data + SW) out, or `None` to let the card answer.
pub type GpHook = Box<dyn FnMut(&[u8]) -> Option<Vec<u8>>>;

pub struct FakeSd {
    card: Card,
    pub keys: StaticKeys,
    pub version: ScpVersion,
    session: Option<AnySession>,
    /// A wrapped answer being served in chunks: (data + SW, position).
    out: Option<(Vec<u8>, usize)>,
    /// Most data bytes per R-APDU.
    pub chunk: usize,
    seq: u32,
    pub hook: GpHook,
    /// Every C-APDU as it arrived on the wire.
    pub wire: Vec<Vec<u8>>,
}

fn sw(sw: u16) -> Vec<u8> {
    sw.to_be_bytes().to_vec()
}

impl FakeSd {
    /// The default card profile behind an SD with the GP test keys, answering in 64-byte chunks.
    pub fn new(version: ScpVersion) -> FakeSd {
        let state = profile::build(profile::DEFAULT_PROFILE).unwrap_or_else(|e| panic!("{e}"));
        FakeSd {
            card: Card::in_memory(state),
            keys: StaticKeys::gp_default(),
            version,
            session: None,
            out: None,
            chunk: 64,
            seq: 0,
            hook: Box::new(|_| None),
            wire: Vec::new(),
        }
    }

    /// The card's whole answer to a plain command, its own `61xx` chunks joined.
    fn card_full(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut r = self.card.transmit(plain);
        let mut data = Vec::new();
        while let [.., 0x61, n] = r.as_slice() {
            let n = *n;
            data.extend_from_slice(&r[..r.len() - 2]);
            r = self
                .card
                .transmit(&get_response_for(plain.first().copied().unwrap_or(0), n));
        }
        data.extend_from_slice(&r);
        data
    }

    fn serve(&mut self, whole: Vec<u8>, pos: usize, le: usize) -> Vec<u8> {
        let data_len = whole.len() - 2;
        let end = (pos + le.min(self.chunk)).min(data_len);
        let mut out = whole[pos..end].to_vec();
        if end < data_len {
            let left = (data_len - end).min(256);
            out.extend_from_slice(&[0x61, (left & 0xFF) as u8]);
            self.out = Some((whole, end));
        } else {
            out.extend_from_slice(&whole[data_len..]);
        }
        out
    }

    /// PUT KEY through the card's own parser (`apdu_specs::gp::PutKey`), answered with this
    /// fake's status words: `9484` for a key type the session's protocol does not use,
    /// `9485` for a wrong check value, `6A80` for anything else malformed.
    fn put_key(&mut self, plain: &[u8]) -> Vec<u8> {
        let Some(session) = &self.session else {
            return sw(0x6985);
        };
        let Ok(cmd) = Command::parse(plain) else {
            return sw(0x6700);
        };
        let put = match gp::PutKey::parse(&cmd) {
            Ok(p) => p,
            Err(apdu_specs::Status::IncorrectData) => return sw(0x9484),
            Err(_) => return sw(0x6A80),
        };
        let mut new = Vec::new();
        for k in &put.keys {
            let clear = match (self.version, k.key_type, session) {
                (ScpVersion::Scp03, gp::KeyType::Aes, AnySession::Scp03(_))
                | (ScpVersion::Scp02, gp::KeyType::Des, AnySession::Scp02(_)) => {
                    session.decrypt_key(&k.encrypted, usize::from(k.key_len))
                }
                _ => return sw(0x9484),
            };
            let Ok(clear) = clear else {
                return sw(0x6A80);
            };
            let kcv = match self.version {
                ScpVersion::Scp03 => kcv_aes(&clear),
                ScpVersion::Scp02 => kcv_des3(&clear),
            };
            if kcv != Ok(k.kcv) {
                return sw(0x9485);
            }
            new.push(clear.to_vec());
        }
        let [enc, mac, dek] = new.as_slice() else {
            return sw(0x6A80);
        };
        match StaticKeys::new(enc, mac, dek) {
            Ok(k) => self.keys = k,
            Err(_) => return sw(0x6A80),
        }
        let mut answer = put.confirmation().to_bytes();
        answer.extend_from_slice(&[0x90, 0x00]);
        answer
    }

    fn initialize_update(&mut self, apdu: &[u8]) -> Vec<u8> {
        let Ok(iu) = InitializeUpdate::parse(apdu) else {
            return sw(0x6700);
        };
        self.seq += 1;
        let made = match self.version {
            ScpVersion::Scp03 => scp03::CardSession::initialize_update(
                &self.keys,
                &CardConfig::scp03(0x30, &GP_ISD_AID),
                self.seq,
                &iu,
                CardChallenge::FromConfig,
            )
            .map(|(s, d)| (AnySession::from(s), d)),
            ScpVersion::Scp02 => scp02::CardSession::initialize_update(
                &self.keys,
                &CardConfig::scp02(0x20, &GP_ISD_AID),
                u16::try_from(self.seq).unwrap_or(0),
                &iu,
                CardChallenge::FromConfig,
            )
            .map(|(s, d)| (AnySession::from(s), d)),
        };
        match made {
            Ok((s, mut data)) => {
                self.session = Some(s);
                data.extend_from_slice(&[0x90, 0x00]);
                data
            }
            Err(e) => sw(e.status_word()),
        }
    }
}

impl VirtualCard for FakeSd {
    fn atr(&self) -> Vec<u8> {
        self.card.atr()
    }
    fn power_on(&mut self) -> Vec<u8> {
        self.session = None;
        self.card.power_on()
    }
    fn power_off(&mut self) {
        self.session = None;
        self.card.power_off()
    }
    fn reset(&mut self) -> Vec<u8> {
        self.session = None;
        self.card.reset()
    }

    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.wire.push(apdu.to_vec());
        let Ok(cmd) = Command::parse(apdu) else {
            return sw(0x6700);
        };
        let has_sm = cmd.cla & 0x04 != 0;
        if cmd.ins == iso::GET_RESPONSE && !has_sm {
            if let Some((whole, pos)) = self.out.take() {
                let le = cmd.le().unwrap_or(256);
                return self.serve(whole, pos, le);
            }
        }
        self.out = None;
        // A SELECT in the clear ends the session (the OPEN selects anew; GP CS §10.4).
        if cmd.ins == iso::SELECT && !has_sm {
            self.session = None;
        }
        if cmd.cla & 0x80 != 0 && cmd.ins == gp_ins::INITIALIZE_UPDATE {
            return self.initialize_update(apdu);
        }
        let Some(session) = self.session.as_mut() else {
            return self.card.transmit(apdu);
        };
        if session.is_aborted() {
            return sw(0x6982);
        }
        if session.security_level().is_none() {
            if cmd.ins == gp_ins::EXTERNAL_AUTHENTICATE {
                return match session.external_authenticate(apdu) {
                    Ok(_) => sw(0x9000),
                    Err(e) => sw(e.status_word()),
                };
            }
            self.session = None;
            return self.card.transmit(apdu);
        }
        let plain = match session.unwrap_command(apdu) {
            Ok(p) => p,
            Err(e) => return sw(e.status_word()),
        };
        let answer = match (self.hook)(&plain) {
            Some(a) => a,
            None if plain.get(1) == Some(&gp_ins::PUT_KEY) => self.put_key(&plain),
            None => self.card_full(&plain),
        };
        let (data, status) = answer.split_at(answer.len().saturating_sub(2));
        let status = match status {
            [a, b] => u16::from_be_bytes([*a, *b]),
            _ => 0x6F00,
        };
        let wrapped = match self.session.as_mut() {
            Some(s) => s.wrap_response(data, status),
            None => sw(0x6F00),
        };
        self.serve(wrapped, 0, 256)
    }
}
