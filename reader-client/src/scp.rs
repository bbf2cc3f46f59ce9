//! GlobalPlatform secure messaging (SCP02, SCP03) as a decorator over any [`Transport`].
//!
//! [`Scp::open`] runs INITIALIZE UPDATE and EXTERNAL AUTHENTICATE through secure-channel's
//! host handshake; afterwards [`Scp`] is itself a [`Transport`] that wraps every command and
//! unwraps every answer, so the same client code (GP commands, ES10c, plain ISO commands)
//! runs in the clear or inside the channel, against pcscd or the in-process card.
//!
//! Layering (GP Amd D §6.2.5, secure-channel's crate notes): the card wraps the *whole*
//! answer before splitting it into `61xx` chunks, so this layer first fetches every chunk
//! with GET RESPONSE (never wrapped: class `00|ch`, no MAC) and only then unwraps the joined
//! answer. Callers above therefore never see `61xx` for a wrapped command.

use crate::exchange::{get_response_for, transmit_following, MAX_GET_RESPONSE};
use crate::{ClientError, Transport};
use apdu_specs::Status;
use secure_channel::scp::{scp02::Scp02, scp03::Scp03};
use secure_channel::{
    AnyHostSession, HostHandshake, HostSecureChannel, HostSession, Protocol, ScpError,
    SecurityLevel, StaticKeys,
};
use std::fmt;
use std::str::FromStr;

/// Which secure channel protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScpVersion {
    /// SCP02 (3DES, i = 15/55): levels 00, 01, 03.
    Scp02,
    /// SCP03 (AES): levels 00, 01, 03, 11, 13, 33.
    Scp03,
}

impl ScpVersion {
    /// The key version number our card answers for this protocol's default key set, and
    /// the one `gp` asks for unless told otherwise (SCP03 `30`, SCP02 `20`).
    pub fn default_kvn(self) -> u8 {
        match self {
            ScpVersion::Scp02 => 0x20,
            ScpVersion::Scp03 => 0x30,
        }
    }
}

impl fmt::Display for ScpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScpVersion::Scp02 => "SCP02",
            ScpVersion::Scp03 => "SCP03",
        })
    }
}

impl FromStr for ScpVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<ScpVersion, String> {
        match s.trim_start_matches(['s', 'S', 'c', 'C', 'p', 'P']) {
            "02" | "2" => Ok(ScpVersion::Scp02),
            "03" | "3" => Ok(ScpVersion::Scp03),
            _ => Err(format!(
                "{s:?} is not a secure channel protocol; use 02 or 03"
            )),
        }
    }
}

/// A security level by name: `mac` (01, C-MAC), `enc` (03, C-DEC + C-MAC), `full` (33,
/// C-MAC + C-DEC + R-MAC + R-ENC), or the EXTERNAL AUTHENTICATE P1 in hex (`00 01 03 11 13 33`).
pub fn parse_level(s: &str) -> Result<SecurityLevel, String> {
    match s.to_ascii_lowercase().as_str() {
        "mac" => Ok(SecurityLevel::C_MAC),
        "enc" => Ok(SecurityLevel::C_DEC_C_MAC),
        "full" => Ok(SecurityLevel::FULL),
        other => u8::from_str_radix(other, 16)
            .ok()
            .and_then(|p1| SecurityLevel::from_p1(p1).ok())
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a security level; use mac, enc, full or one of 00 01 03 11 13 33"
                )
            }),
    }
}

/// How to open a secure channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScpOptions {
    pub version: ScpVersion,
    /// Key version number for INITIALIZE UPDATE (`00`: the card picks).
    pub kvn: u8,
    pub level: SecurityLevel,
    /// Logical channel (0..=19) on which the security domain is selected.
    pub channel: u8,
    /// A fixed host challenge (8 bytes; 16 for SCP03 S16). `None`: random (always, outside tests).
    pub host_challenge: Option<Vec<u8>>,
}

impl ScpOptions {
    /// Channel 0, the protocol's default key version, a random host challenge.
    pub fn new(version: ScpVersion, level: SecurityLevel) -> ScpOptions {
        ScpOptions {
            version,
            kvn: version.default_kvn(),
            level,
            channel: 0,
            host_challenge: None,
        }
    }
}

/// A transport whose commands travel inside a GlobalPlatform secure channel.
pub struct Scp<T: Transport> {
    inner: T,
    /// `None` once the card was reset or a security error ended the session.
    session: Option<AnyHostSession>,
    options: ScpOptions,
    /// The key version the card answered with.
    card_kvn: u8,
}

fn scp_err(step: &'static str) -> impl Fn(ScpError) -> ClientError {
    move |source| ClientError::Scp { step, source }
}

impl<T: Transport> Scp<T> {
    /// Authenticate to the security domain selected on `options.channel` (select it first)
    /// and return the decorated transport.
    pub fn open(
        mut inner: T,
        keys: &StaticKeys,
        options: &ScpOptions,
    ) -> Result<Scp<T>, ClientError> {
        let session = match options.version {
            ScpVersion::Scp03 => {
                AnyHostSession::from(authenticate::<Scp03, T>(&mut inner, keys, options)?)
            }
            ScpVersion::Scp02 => {
                AnyHostSession::from(authenticate::<Scp02, T>(&mut inner, keys, options)?)
            }
        };
        let card_kvn = session.kvn();
        Ok(Scp {
            inner,
            session: Some(session),
            options: options.clone(),
            card_kvn,
        })
    }

    /// The negotiated level; `None` once the session ended.
    pub fn security_level(&self) -> Option<SecurityLevel> {
        self.session.as_ref().map(|s| s.security_level())
    }

    pub fn version(&self) -> ScpVersion {
        self.options.version
    }

    /// The key version number the card answered INITIALIZE UPDATE with.
    pub fn card_kvn(&self) -> u8 {
        self.card_kvn
    }

    /// The logical channel the session is bound to.
    pub fn channel(&self) -> u8 {
        self.options.channel
    }

    /// Encrypt a key for PUT KEY as this protocol wants it: SCP03 under the static K-DEK
    /// (AES-CBC, GP Amd D §7.2.1), SCP02 under the session S-DEK (3DES-ECB, GP CS E.4.7).
    pub fn encrypt_key(&self, key: &[u8]) -> Result<Vec<u8>, ClientError> {
        let r = match &self.session {
            Some(s) => s.encrypt_key(key),
            None => Err(ScpError::NotOpen),
        };
        r.map_err(scp_err("encrypting a key for PUT KEY"))
    }

    /// The undecorated transport (for commands that must go in the clear).
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    pub fn into_inner(self) -> T {
        self.inner
    }
}

/// INITIALIZE UPDATE and EXTERNAL AUTHENTICATE through secure-channel's host handshake.
fn authenticate<P: Protocol, T: Transport>(
    inner: &mut T,
    keys: &StaticKeys,
    options: &ScpOptions,
) -> Result<HostSession<P>, ClientError> {
    let hs = match &options.host_challenge {
        Some(c) => HostHandshake::<P>::with_challenge(keys, options.kvn, c),
        None => HostHandshake::<P>::new(keys, options.kvn),
    }
    .and_then(|h| h.on_channel(options.channel))
    .map_err(scp_err("preparing INITIALIZE UPDATE"))?;
    let iu = initialize_update(inner, &hs.initialize_update())?;
    let (session, ext_auth) = hs
        .authenticate(&iu, options.level)
        .map_err(scp_err("INITIALIZE UPDATE"))?;
    session
        .confirm(&inner.transmit(&ext_auth)?)
        .map_err(scp_err("EXTERNAL AUTHENTICATE"))?;
    Ok(session)
}

/// Send INITIALIZE UPDATE (case 4: follow `61xx`) and return its whole answer.
fn initialize_update<T: Transport>(t: &mut T, apdu: &[u8]) -> Result<Vec<u8>, ClientError> {
    let r = transmit_following(t, apdu, true)?;
    match r.status.to_u16() {
        0x9000 => Ok(r.to_bytes()),
        sw => Err(ClientError::Scp {
            step: "INITIALIZE UPDATE",
            source: ScpError::Refused {
                step: match sw {
                    0x6A88 => "INITIALIZE UPDATE (no key set with that version: try --kvn 00 or the card's KVN)",
                    0x6D00 | 0x6E00 => "INITIALIZE UPDATE (no security domain selected on this channel)",
                    0x6983 => "INITIALIZE UPDATE (the key set is blocked)",
                    _ => "INITIALIZE UPDATE",
                },
                sw,
            },
        }),
    }
}

impl<T: Transport> Transport for Scp<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ClientError> {
        let session = self.session.as_mut().ok_or(ClientError::ScpClosed)?;
        let wire = session
            .wrap_command(apdu)
            .map_err(scp_err("wrapping a command"))?;
        // Join every 61xx chunk first: the card protected the whole answer (GP Amd D §6.2.5).
        let mut joined = Vec::new();
        let mut r = crate::exchange::parse_response(&self.inner.transmit(&wire)?)?;
        let mut n = 0usize;
        while let Status::BytesAvailable(le) = r.status {
            joined.extend_from_slice(&r.data);
            n += 1;
            if n > MAX_GET_RESPONSE {
                return Err(ClientError::EndlessGetResponse(MAX_GET_RESPONSE));
            }
            let get_response = get_response_for(apdu.first().copied().unwrap_or(0), le);
            r = crate::exchange::parse_response(&self.inner.transmit(&get_response)?)?;
        }
        joined.extend_from_slice(&r.data);
        joined.extend_from_slice(&r.status.to_bytes());
        match session.unwrap_response(&joined) {
            Ok((mut data, sw)) => {
                data.extend_from_slice(&sw.to_be_bytes());
                Ok(data)
            }
            Err(e) => {
                // A response that fails its R-MAC ends the session (GP Amd D §5.6).
                self.session = None;
                Err(ClientError::Scp {
                    step: "unwrapping the answer",
                    source: e,
                })
            }
        }
    }

    /// A reset ends the session on the card; later commands fail with [`ClientError::ScpClosed`].
    fn reset(&mut self) -> Result<Vec<u8>, ClientError> {
        self.session = None;
        self.inner.reset()
    }

    fn name(&self) -> String {
        format!(
            "{} in {} at level {}",
            self.inner.name(),
            self.options.version,
            self.options.level
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::es10_client::Es10Client;
    use crate::fake_sd::FakeSd;
    use crate::{gp, InProcess};
    use apdu_specs::hexfmt;

    const CASES: [(ScpVersion, SecurityLevel); 5] = [
        (ScpVersion::Scp03, SecurityLevel::C_MAC),
        (ScpVersion::Scp03, SecurityLevel::C_DEC_C_MAC),
        (ScpVersion::Scp03, SecurityLevel::FULL),
        (ScpVersion::Scp02, SecurityLevel::C_MAC),
        (ScpVersion::Scp02, SecurityLevel::C_DEC_C_MAC),
    ];

    fn tx(t: &mut dyn Transport, hex: &str) -> String {
        hexfmt::upper(&t.transmit(&hexfmt::parse(hex).unwrap()).unwrap())
    }

    /// The fake SD with the ISD selected in the clear, as `reader-client gp` does.
    fn selected(version: ScpVersion) -> InProcess<FakeSd> {
        let mut t = InProcess::new(FakeSd::new(version));
        gp::select(&mut t, &gp::ISD_AID, 0).unwrap();
        t
    }

    fn open<T: Transport>(t: T, version: ScpVersion, level: SecurityLevel) -> Scp<T> {
        Scp::open(
            t,
            &StaticKeys::gp_default(),
            &ScpOptions::new(version, level),
        )
        .unwrap_or_else(|e| panic!("{version} {level}: {e}"))
    }

    #[test]
    fn every_level_carries_iso_commands_and_es10_through_the_real_card() {
        for (version, level) in CASES {
            let mut t = selected(version);
            let mut scp = open(&mut t, version, level);
            assert_eq!(scp.security_level(), Some(level));
            assert_eq!(tx(&mut scp, "00A4040C08F0565345434F4E54"), "9000");
            assert_eq!(tx(&mut scp, "00A4020C026F01"), "9000");
            let r = scp.transmit(&hexfmt::parse("00B0000018").unwrap()).unwrap();
            assert_eq!(r, b"container A: public data\x90\x00", "{version} {level}");
            // ES10c inside the channel: the list is longer than one 64-byte chunk.
            let fci = tx(&mut scp, "00A4040010A0000005591010FFFFFFFF890000010000");
            assert!(fci.starts_with("6F") && fci.ends_with("9000"), "{fci}");
            let list = Es10Client::attach(&mut scp, 0).list_profiles().unwrap();
            assert_eq!(list.len(), 2, "{version} {level}");
            drop(scp);
            let wire = &t.card().wire;
            // GET RESPONSE travelled in the clear, every other command after the handshake wrapped.
            let get_responses: Vec<_> = wire.iter().filter(|a| a[1] == 0xC0).collect();
            assert!(get_responses.len() >= 2, "{version} {level}");
            assert!(get_responses.iter().all(|a| a[0] == 0x00));
            let after_auth = wire.iter().skip_while(|a| a[1] != 0x82).skip(1);
            assert!(after_auth
                .filter(|a| a[1] != 0xC0)
                .all(|a| a[0] & 0x04 != 0));
        }
    }

    #[test]
    fn command_data_is_encrypted_only_at_enc_and_full() {
        for (version, level) in CASES {
            let mut t = selected(version);
            let mut scp = open(&mut t, version, level);
            tx(&mut scp, "00A4040C08F0565345434F4E54");
            drop(scp);
            let wire = t.card().wire.last().unwrap().clone();
            let clear = hexfmt::parse("F0565345434F4E54").unwrap();
            let visible = wire.windows(clear.len()).any(|w| w == clear);
            assert_eq!(visible, !level.c_dec(), "{version} {level}");
        }
    }

    #[test]
    fn scp02_refuses_full_level() {
        let mut t = selected(ScpVersion::Scp02);
        let r = Scp::open(
            &mut t,
            &StaticKeys::gp_default(),
            &ScpOptions::new(ScpVersion::Scp02, SecurityLevel::FULL),
        );
        assert!(matches!(
            r,
            Err(ClientError::Scp {
                source: ScpError::UnsupportedLevel(0x33),
                ..
            })
        ));
    }

    /// Flips one bit of the next response (or command) passing through.
    struct Flip<T: Transport> {
        inner: T,
        /// Byte index from the end of the next response to flip (0 = SW2).
        response_from_end: Option<usize>,
        /// Byte index of the next command to flip.
        command_at: Option<usize>,
    }

    impl<T: Transport> Flip<T> {
        fn new(inner: T) -> Flip<T> {
            Flip {
                inner,
                response_from_end: None,
                command_at: None,
            }
        }
    }

    impl<T: Transport> Transport for Flip<T> {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ClientError> {
            let mut apdu = apdu.to_vec();
            if let Some(i) = self.command_at.take() {
                apdu[i] ^= 0x01;
            }
            let mut r = self.inner.transmit(&apdu)?;
            if let Some(i) = self.response_from_end.take() {
                let n = r.len();
                r[n - 1 - i] ^= 0x01;
            }
            Ok(r)
        }
        fn reset(&mut self) -> Result<Vec<u8>, ClientError> {
            self.inner.reset()
        }
        fn name(&self) -> String {
            self.inner.name()
        }
    }

    #[test]
    fn a_flipped_bit_in_a_response_is_refused_at_full_level() {
        // 2: last byte of the R-MAC; 10: inside the R-MAC; 12: inside the encrypted data.
        for from_end in [2, 9, 12] {
            let mut t = Flip::new(selected(ScpVersion::Scp03));
            let mut scp = open(&mut t, ScpVersion::Scp03, SecurityLevel::FULL);
            assert_eq!(tx(&mut scp, "00A4040C08F0565345434F4E54"), "9000");
            assert_eq!(tx(&mut scp, "00A4020C026F01"), "9000");
            scp.inner_mut().response_from_end = Some(from_end);
            let r = scp.transmit(&hexfmt::parse("00B0000018").unwrap());
            assert!(
                matches!(
                    r,
                    Err(ClientError::Scp {
                        source: ScpError::ResponseMac,
                        ..
                    })
                ),
                "{from_end}: {r:?}"
            );
            // The session is over; nothing more is trusted.
            assert!(matches!(
                scp.transmit(&hexfmt::parse("00B0000018").unwrap()),
                Err(ClientError::ScpClosed)
            ));
        }
    }

    #[test]
    fn a_flipped_bit_in_a_command_is_refused_by_the_card_which_then_refuses_everything() {
        for (version, level) in CASES {
            let mut t = Flip::new(selected(version));
            let mut scp = open(&mut t, version, level);
            // Byte 5: first data byte (plain or encrypted), covered by the C-MAC.
            scp.inner_mut().command_at = Some(5);
            assert_eq!(
                tx(&mut scp, "00A4040C08F0565345434F4E54"),
                "6982",
                "{version} {level}"
            );
            assert_eq!(tx(&mut scp, "00A4040C08F0565345434F4E54"), "6982");
        }
    }

    #[test]
    fn wrong_keys_fail_at_the_card_cryptogram_and_a_reset_ends_the_session() {
        let mut t = selected(ScpVersion::Scp03);
        let wrong = StaticKeys::from_single(&[0x11; 16]).unwrap();
        let opts = ScpOptions::new(ScpVersion::Scp03, SecurityLevel::FULL);
        assert!(matches!(
            Scp::open(&mut t, &wrong, &opts),
            Err(ClientError::Scp {
                source: ScpError::CardCryptogram,
                ..
            })
        ));
        let mut scp = open(&mut t, ScpVersion::Scp03, SecurityLevel::C_MAC);
        assert_eq!(scp.card_kvn(), 0x30);
        scp.reset().unwrap();
        assert!(matches!(
            scp.transmit(&[0x00, 0xA4, 0x04, 0x00, 0x00]),
            Err(ClientError::ScpClosed)
        ));
    }

    #[test]
    fn levels_and_versions_parse_from_their_cli_names() {
        assert_eq!(parse_level("mac"), Ok(SecurityLevel::C_MAC));
        assert_eq!(parse_level("ENC"), Ok(SecurityLevel::C_DEC_C_MAC));
        assert_eq!(parse_level("full"), Ok(SecurityLevel::FULL));
        assert_eq!(parse_level("13"), Ok(SecurityLevel::C_DEC_C_MAC_R_MAC));
        assert!(parse_level("02").is_err());
        assert_eq!("03".parse(), Ok(ScpVersion::Scp03));
        assert_eq!("scp02".parse(), Ok(ScpVersion::Scp02));
        assert!("04".parse::<ScpVersion>().is_err());
    }
}
