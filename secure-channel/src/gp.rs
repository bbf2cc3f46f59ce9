//! What SCP02 and SCP03 share: INITIALIZE UPDATE, the card's identity, class-byte and status-word rules.

use crate::ScpError;
use apdu_specs::gp as codec;
use apdu_specs::Command;

/// INITIALIZE UPDATE on a logical channel: the command itself is the one codec's
/// ([`apdu_specs::gp::InitializeUpdate`], which holds the rules for its class, P2 and
/// challenge); the session needs the channel it came on too, to bind itself to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitializeUpdate {
    /// Logical channel the command travels on (0..=19).
    pub channel: u8,
    /// Requested key version; `00` means "the first available key set".
    pub kvn: u8,
    /// 8 bytes (SCP02, SCP03 S8) or 16 bytes (SCP03 S16).
    pub host_challenge: Vec<u8>,
}

impl InitializeUpdate {
    /// Parse the command as the card receives it.
    pub fn parse(command: &[u8]) -> Result<InitializeUpdate, ScpError> {
        let cmd = Command::parse(command).map_err(|e| ScpError::MalformedApdu(e.to_string()))?;
        let cla =
            apdu_specs::Cla::decode(cmd.cla).map_err(|e| ScpError::MalformedApdu(e.to_string()))?;
        let parsed = codec::InitializeUpdate::parse(&cmd).map_err(|status| {
            ScpError::MalformedApdu(format!(
                "not an INITIALIZE UPDATE a card takes ({status}): it needs INS 50, a \
                 GlobalPlatform class 80..83 without secure messaging, P2 00 and a host \
                 challenge of 8 or 16 bytes"
            ))
        })?;
        Ok(InitializeUpdate::on_channel(cla.channel(), parsed))
    }

    /// The codec's command with the channel it came on.
    pub fn on_channel(channel: u8, command: codec::InitializeUpdate) -> InitializeUpdate {
        InitializeUpdate {
            channel,
            kvn: command.kvn,
            host_challenge: command.host_challenge,
        }
    }

    /// Serialise as the host sends it (case 4, Le `00`), on its channel.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ScpError> {
        let mut cmd = codec::InitializeUpdate {
            kvn: self.kvn,
            host_challenge: self.host_challenge.clone(),
        }
        .to_command();
        cmd.cla = channel_cla(self.channel, false)?;
        cmd.to_bytes()
            .map_err(|e| ScpError::MalformedApdu(e.to_string()))
    }
}

/// What a card (security domain) says about itself in the INITIALIZE UPDATE response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardConfig {
    /// Key diversification data, the first 10 response bytes.
    pub kdd: [u8; 10],
    /// Version of the key set the card answers with.
    pub kvn: u8,
    /// The SCP "i" parameter: SCP03 typically `70` (pseudo-random challenge, R-MAC, R-ENC);
    /// SCP02 `15` or `55`.
    pub i: u8,
    /// AID of the security domain (input of the pseudo-random card challenge).
    pub sd_aid: Vec<u8>,
}

impl CardConfig {
    /// SCP03 with i = `70`, KDD of zeros.
    pub fn scp03(kvn: u8, sd_aid: &[u8]) -> CardConfig {
        CardConfig {
            kdd: [0; 10],
            kvn,
            i: 0x70,
            sd_aid: sd_aid.to_vec(),
        }
    }
    /// The SD AID as the input of a pseudo-random card challenge (GP Card Spec E.4.2.1,
    /// Amd D §6.2.2.1), which needs one of 5 to 16 bytes.
    pub(crate) fn pseudo_random_aid(&self) -> Result<&[u8], ScpError> {
        if !(5..=16).contains(&self.sd_aid.len()) {
            return Err(ScpError::Unsupported(format!(
                "pseudo-random challenge needs the SD AID (5 to 16 bytes), got {} bytes",
                self.sd_aid.len()
            )));
        }
        Ok(&self.sd_aid)
    }
    /// SCP02 with i = `55`, KDD of zeros.
    pub fn scp02(kvn: u8, sd_aid: &[u8]) -> CardConfig {
        CardConfig {
            kdd: [0; 10],
            kvn,
            i: 0x55,
            sd_aid: sd_aid.to_vec(),
        }
    }
}

/// Where the card challenge comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardChallenge<'a> {
    /// As the i parameter says: pseudo-random (derived from the sequence counter and the SD AID)
    /// when its pseudo-random bit is set, otherwise from the operating system's generator.
    FromConfig,
    /// Exactly these bytes (replaying a recorded trace; a real card never does this).
    Fixed(&'a [u8]),
}

/// The status words after which a response keeps its data and gets an R-MAC: `9000`, `62xx`,
/// `63xx`. Every other status word is an error: the card returns only the status word and no
/// R-MAC (GP Amd D §6.2.5; pysim `SCP03.unwrap_rsp_apdu`).
pub fn is_protected_status(sw: u16) -> bool {
    sw == 0x9000 || matches!(sw >> 8, 0x62 | 0x63)
}

/// The secure-messaging bit of a class byte: `04` in the first interindustry layout
/// (channels 0-3), `20` in the further layout (channels 4-19).
pub(crate) fn sm_bit(cla: u8) -> u8 {
    if cla & 0x40 == 0 {
        0x04
    } else {
        0x20
    }
}

pub(crate) fn has_sm(cla: u8) -> bool {
    cla & sm_bit(cla) != 0
}

/// The logical channel a class byte addresses.
pub(crate) fn command_channel(cla: u8) -> Result<u8, ScpError> {
    apdu_specs::Cla::decode(cla)
        .map(|c| c.channel())
        .map_err(|e| ScpError::MalformedApdu(e.to_string()))
}

/// A command must travel on the channel its session was opened on: the channel number is
/// outside the C-MAC (GP Amd D §6.2.4), so the session binds it instead.
pub(crate) fn check_channel(cla: u8, channel: u8) -> Result<(), ScpError> {
    let ch = command_channel(cla)?;
    if ch != channel {
        return Err(ScpError::MalformedApdu(format!(
            "command for logical channel {ch} in a secure channel opened on channel {channel}"
        )));
    }
    Ok(())
}

/// Card side: the class byte of a command at a MAC-protected level must indicate
/// GlobalPlatform proprietary secure messaging (`84`: b4 b3 = 0 1, or b6 = 1 on channels 4-19)
/// on the session's channel. Bits the C-MAC does not cover are checked here instead.
pub(crate) fn check_protected_cla(cla: u8, channel: u8) -> Result<(), ScpError> {
    if !has_sm(cla) {
        return Err(ScpError::MissingMac(cla));
    }
    if cla & 0x40 == 0 && cla & 0x08 != 0 {
        return Err(ScpError::MalformedApdu(format!(
            "CLA {cla:02X} indicates ISO 7816-4 secure messaging; GlobalPlatform uses b4 b3 = 0 1 (e.g. 84)"
        )));
    }
    check_channel(cla, channel)
}

/// The class byte that goes into a C-MAC (GP Amd D §6.2.4; GP Card Spec E.4.4): logical
/// channel set to zero, b4 = 0, b3 = 1; every other bit kept. A further-layout class
/// (channels 4-19) becomes its channel-0 first-layout form, keeping b8 and chaining.
pub(crate) fn mac_cla(cla: u8) -> u8 {
    if cla & 0x40 == 0 {
        (cla & 0xF0) | 0x04
    } else {
        (cla & 0x90) | 0x04
    }
}

/// The class byte a wrapped command travels with: the SM indication added, refused where
/// no valid class byte exists (`FF` for a chained command on channel 19).
pub(crate) fn wire_cla(cla: u8) -> Result<u8, ScpError> {
    let wire = cla | sm_bit(cla);
    apdu_specs::Cla::decode(wire)
        .map_err(|e| ScpError::Unsupported(format!("secure messaging on CLA {cla:02X}: {e}")))?;
    Ok(wire)
}

/// The proprietary class byte (`8x` / `Cx`) for a logical channel, with or without SM.
pub(crate) fn channel_cla(channel: u8, sm: bool) -> Result<u8, ScpError> {
    apdu_specs::Cla::encode(true, channel, false, sm)
        .ok_or_else(|| ScpError::Unsupported(format!("logical channel {channel} (0..=19)")))
}

/// The Lc field as it appears on the wire (and in the MAC input).
pub(crate) fn lc_field(len: usize, extended: bool) -> Vec<u8> {
    if extended {
        let [hi, lo] = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
        vec![0x00, hi, lo]
    } else {
        vec![u8::try_from(len).unwrap_or(u8::MAX)]
    }
}

/// Split an R-APDU into data and status word.
pub(crate) fn split_response(response: &[u8]) -> Result<(&[u8], u16), ScpError> {
    match response {
        [data @ .., sw1, sw2] => Ok((data, u16::from_be_bytes([*sw1, *sw2]))),
        _ => Err(ScpError::MalformedResponse(format!(
            "a response needs at least SW1 SW2, got {} byte(s)",
            response.len()
        ))),
    }
}

/// Host side: the data of the card's answer to INITIALIZE UPDATE, which must end in `9000`.
pub(crate) fn initialize_update_data(response: &[u8]) -> Result<&[u8], ScpError> {
    match split_response(response)? {
        (data, 0x9000) => Ok(data),
        (_, sw) => Err(ScpError::Refused {
            step: "INITIALIZE UPDATE",
            sw,
        }),
    }
}

/// Host side: the card's answer to EXTERNAL AUTHENTICATE must be a bare `9000`.
pub(crate) fn check_authentication_response(response: &[u8]) -> Result<(), ScpError> {
    match split_response(response)? {
        ([], 0x9000) => Ok(()),
        ([], sw) => Err(ScpError::Refused {
            step: "EXTERNAL AUTHENTICATE",
            sw,
        }),
        (data, _) => Err(ScpError::MalformedResponse(format!(
            "EXTERNAL AUTHENTICATE answered with {} data byte(s); it returns none",
            data.len()
        ))),
    }
}

/// Join data and status word into an R-APDU.
pub(crate) fn join_response(data: &[u8], sw: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 2);
    out.extend_from_slice(data);
    out.extend_from_slice(&sw.to_be_bytes());
    out
}

/// The plain command's extended flag when unwrapping: extended when its own lengths need it,
/// or when the wrapped command was sent extended although its lengths did not need it.
pub(crate) fn plain_is_extended(wire: &Command<'_>, plain_len: usize) -> bool {
    let le_ext = wire
        .le()
        .is_some_and(|le| le > apdu_specs::command::MAX_NE_SHORT);
    let wire_needed = wire.data().len() > 255 || le_ext;
    plain_len > 255 || le_ext || (wire.is_extended() && !wire_needed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn initialize_update_round_trips() {
        // osmocom/pysim test_globalplatform.py SCP02_Test: INITIALIZE UPDATE with KVN 20.
        let bytes = hex!("805020000840A62C37FA6304F800");
        let iu = InitializeUpdate::parse(&bytes).unwrap();
        assert_eq!((iu.channel, iu.kvn), (0, 0x20));
        assert_eq!(iu.host_challenge, hex!("40A62C37FA6304F8"));
        assert_eq!(iu.to_bytes().unwrap(), bytes);
        let on_ch2 = InitializeUpdate { channel: 2, ..iu };
        assert_eq!(on_ch2.to_bytes().unwrap()[0], 0x82);
    }

    #[test]
    fn initialize_update_refuses_wrong_shapes() {
        for bad in [
            &hex!("805020")[..],
            &hex!("8050200007 40A62C37FA6304 00"),
            &hex!("8450200008 40A62C37FA6304F8 00"),
            &hex!("0050200008 40A62C37FA6304F8 00"),
            &hex!("8050200108 40A62C37FA6304F8 00"),
            &hex!("8052200008 40A62C37FA6304F8 00"),
        ] {
            assert!(InitializeUpdate::parse(bad).is_err(), "{bad:02X?}");
        }
    }

    #[test]
    fn status_word_classes() {
        assert!(is_protected_status(0x9000));
        assert!(is_protected_status(0x6283));
        assert!(is_protected_status(0x63C2));
        for sw in [0x6100, 0x6982, 0x6A88, 0x6D00, 0x9001] {
            assert!(!is_protected_status(sw), "{sw:04X}");
        }
    }

    #[test]
    fn class_byte_rules() {
        assert_eq!(mac_cla(0x80), 0x84);
        assert_eq!(mac_cla(0x83), 0x84);
        assert_eq!(mac_cla(0x93), 0x94);
        assert_eq!(mac_cla(0xA0), 0xA4);
        assert_eq!(mac_cla(0xC5), 0x84);
        assert_eq!(mac_cla(0xFE), 0x94);
        assert_eq!(wire_cla(0x81), Ok(0x85));
        assert_eq!(wire_cla(0xC7), Ok(0xE7));
        assert!(wire_cla(0xDF).is_err());
        assert_eq!(sm_bit(0x81), 0x04);
        assert_eq!(sm_bit(0xC1), 0x20);
        assert!(has_sm(0x84) && has_sm(0xE0) && !has_sm(0x80) && !has_sm(0xC0));
    }
}
