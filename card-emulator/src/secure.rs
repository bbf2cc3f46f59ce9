//! GlobalPlatform secure messaging as a layer the ISO dispatcher calls: EXTERNAL AUTHENTICATE, unwrap → plain dispatch → wrap (GP Amendment D §6.2), and the durable counters.
//!
//! The session of each logical channel is an [`AnySession`] from the `secure-channel` crate,
//! whose cryptography the terminal shares. This layer adds what the card decides around it:
//! which commands may travel in clear, that a refused command ends the session, that failed
//! authentications are counted durably and that SCP02 counts opened channels.

use crate::commands::{Outcome, Response};
use crate::vm::Vm;
use apdu_specs::command::{MAX_NE_EXTENDED, MAX_NE_SHORT};
use apdu_specs::ins::gp::{EXTERNAL_AUTHENTICATE, INITIALIZE_UPDATE};
use apdu_specs::{Cla, Command, Status};
use secure_channel::{AnySession, CardSecureChannel, ScpError, SecurityLevel};
use zeroize::Zeroizing;

/// A secure channel session on one logical channel: opened by INITIALIZE UPDATE,
/// authenticated by EXTERNAL AUTHENTICATE, ended by a security error or a SELECT.
pub struct ChannelScp {
    session: AnySession,
    /// The KVN of the key set in use (PUT KEY needs it).
    pub kvn: u8,
}

impl std::fmt::Debug for ChannelScp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ChannelScp(SCP0{}, KVN {:02X}, {:?})",
            self.scp(),
            self.kvn,
            self.level()
        )
    }
}

impl ChannelScp {
    pub fn new(session: AnySession, kvn: u8) -> ChannelScp {
        ChannelScp { session, kvn }
    }

    /// 2 or 3.
    pub fn scp(&self) -> u8 {
        self.session.scp()
    }

    /// The level EXTERNAL AUTHENTICATE negotiated; `None` before it, and after an abort.
    pub fn level(&self) -> Option<SecurityLevel> {
        self.session.security_level()
    }

    /// Decrypt a PUT KEY key component (SCP03: static DEK; SCP02: session DEK).
    pub fn decrypt_key(
        &self,
        block: &[u8],
        key_len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, ScpError> {
        self.session.decrypt_key(block, key_len)
    }

    /// Neither authenticated nor aborted: only EXTERNAL AUTHENTICATE may follow.
    fn awaiting_authentication(&self) -> bool {
        self.level().is_none() && !self.session.is_aborted()
    }
}

/// The card as this layer sees it, on the logical channel of one command.
pub trait Dispatcher {
    /// The secure channel session of the channel (`None`: no session).
    fn session(&mut self) -> &mut Option<ChannelScp>;
    /// Run one plain command as any other, without fitting its answer to Le. `level` is the
    /// session's: the command came wrapped.
    fn dispatch(&mut self, cla: &Cla, cmd: &Command, level: Option<SecurityLevel>) -> Outcome;
    /// Run `f` over the VM outside any handler and commit what it changed.
    fn with_vm(&mut self, f: impl FnOnce(&mut Vm)) -> Result<(), Status>;
}

/// The answer to a command with secure-messaging bits, and the Le to fit it to.
pub struct Wrapped {
    pub reply: Response,
    pub le: Option<usize>,
}

/// A command with secure-messaging bits: EXTERNAL AUTHENTICATE, or a wrapped command that is
/// unwrapped, dispatched like any other, and its whole answer wrapped before the caller fits
/// it to Le (GP Amendment D §6.2). The caller has dropped pending response data and any
/// command chain of the channel.
pub fn process(card: &mut impl Dispatcher, cla: &Cla, cmd: &Command, apdu: &[u8]) -> Wrapped {
    // A protected answer carries its R-MAC even where the command had no Le (GP Amd D
    // §6.2.5): a missing Le means "as much as fits".
    let le = cmd.le().or(Some(if cmd.is_extended() {
        MAX_NE_EXTENDED
    } else {
        MAX_NE_SHORT
    }));
    Wrapped {
        reply: answer(card, cla, cmd, apdu),
        le,
    }
}

fn answer(card: &mut impl Dispatcher, cla: &Cla, cmd: &Command, apdu: &[u8]) -> Response {
    let Some(scp) = card.session().as_mut() else {
        return Response::status_only(Status::SecureMessagingNotSupported);
    };
    if cla.chained() {
        return Response::status_only(Status::ChainingNotSupported);
    }
    if scp.awaiting_authentication() {
        if cmd.ins != EXTERNAL_AUTHENTICATE {
            *card.session() = None;
            return Response::status_only(Status::SecurityStatusNotSatisfied);
        }
        return external_authenticate(card, apdu);
    }
    let plain = match scp.session.unwrap_command(apdu) {
        Ok(p) => p,
        Err(e) => return refuse(card, &e),
    };
    let Ok(plain_cmd) = Command::parse(&plain) else {
        return Response::status_only(Status::WrongLength);
    };
    let Ok(plain_cla) = Cla::decode(plain_cmd.cla) else {
        return Response::status_only(Status::ClaNotSupported);
    };
    let level = scp.level();
    let (data, sw) = match card.dispatch(&plain_cla, &plain_cmd, level) {
        Ok(r) => (r.data, r.status),
        Err(s) => (Vec::new(), s),
    };
    match card.session().as_mut() {
        Some(scp) => Response::parse(&scp.session.wrap_response(&data, sw.to_u16()))
            .unwrap_or(Response::status_only(Status::NoPreciseDiagnosis)),
        // The command ended the session (a SELECT): answer in clear.
        None => Response::new(data, sw),
    }
}

fn external_authenticate(card: &mut impl Dispatcher, apdu: &[u8]) -> Response {
    let Some(scp) = card.session().as_mut() else {
        return Response::status_only(Status::SecureMessagingNotSupported);
    };
    if let Err(e) = scp.session.external_authenticate(apdu) {
        return refuse(card, &e);
    }
    // SCP02 counts opened channels (GP Card Spec E.4.2.1).
    if scp.scp() == 2 && card.with_vm(|vm| vm.advance_scp02_counter()).is_err() {
        *card.session() = None;
        return Response::status_only(Status::MemoryFailure);
    }
    Response::status_only(Status::Success)
}

/// A security error ends the session and is counted durably (GP: failures are recorded
/// persistently).
fn refuse(card: &mut impl Dispatcher, e: &ScpError) -> Response {
    *card.session() = None;
    let _ = card.with_vm(|vm| vm.count_auth_failure());
    Response::status_only(Status::from_u16(e.status_word()))
}

/// A command in clear: inside a session above level 00 every command to the security domain
/// carries its secure messaging; one that does not (other than a new INITIALIZE UPDATE) ends
/// the session and is refused (GP Amendment D §6.2).
#[inline]
pub fn admit_plain(
    session: &mut Option<ChannelScp>,
    cla: &Cla,
    cmd: &Command,
) -> Result<(), Status> {
    // Most commands come with no session at all: the check costs a branch then.
    let Some(scp) = session else {
        return Ok(());
    };
    let protected = scp.level().is_some_and(|l| l != SecurityLevel::NONE);
    if protected && cla.is_proprietary() && cmd.ins != INITIALIZE_UPDATE {
        *session = None;
        return Err(Status::SecurityStatusNotSatisfied);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secure_channel::scp::{scp02::Scp02, scp03::Scp03};
    use secure_channel::{
        AnyHostSession, CardChallenge, CardConfig, CardSession, HostHandshake, HostSecureChannel,
        HostSession, InitializeUpdate, Protocol, StaticKeys,
    };

    const AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];

    /// A dispatcher that answers every plain command with its INS as data, and counts VM runs.
    #[derive(Default)]
    struct Fake {
        scp: Option<ChannelScp>,
        seen: Vec<(Vec<u8>, Option<SecurityLevel>)>,
        vm_runs: usize,
    }

    impl Dispatcher for Fake {
        fn session(&mut self) -> &mut Option<ChannelScp> {
            &mut self.scp
        }
        fn dispatch(&mut self, _: &Cla, cmd: &Command, level: Option<SecurityLevel>) -> Outcome {
            self.seen.push((cmd.to_bytes().unwrap(), level));
            Ok(Response::ok(vec![cmd.ins]))
        }
        fn with_vm(&mut self, _: impl FnOnce(&mut Vm)) -> Result<(), Status> {
            self.vm_runs += 1;
            Ok(())
        }
    }

    fn run(fake: &mut Fake, apdu: &[u8]) -> (Vec<u8>, Status) {
        let cmd = Command::parse(apdu).unwrap();
        let cla = Cla::decode(cmd.cla).unwrap();
        let wrapped = process(fake, &cla, &cmd, apdu);
        (wrapped.reply.data, wrapped.reply.status)
    }

    /// A session after INITIALIZE UPDATE on the card's side; the host's end and its
    /// EXTERNAL AUTHENTICATE.
    fn initialized<P: Protocol>(
        config: CardConfig,
        level: SecurityLevel,
    ) -> (Fake, AnyHostSession, Vec<u8>)
    where
        P::Counter: From<u8>,
        CardSession<P>: Into<AnySession>,
        HostSession<P>: Into<AnyHostSession>,
    {
        let keys = StaticKeys::gp_default();
        let hs = HostHandshake::<P>::new(&keys, 0).unwrap();
        let iu = InitializeUpdate::parse(&hs.initialize_update()).unwrap();
        let (card, data) = CardSession::<P>::initialize_update(
            &keys,
            &config,
            1.into(),
            &iu,
            CardChallenge::FromConfig,
        )
        .unwrap();
        let (host, ea) = hs
            .authenticate(&[data, vec![0x90, 0x00]].concat(), level)
            .unwrap();
        let fake = Fake {
            scp: Some(ChannelScp::new(card.into(), config.kvn)),
            ..Fake::default()
        };
        (fake, host.into(), ea)
    }

    fn scp03(level: SecurityLevel) -> (Fake, AnyHostSession, Vec<u8>) {
        initialized::<Scp03>(CardConfig::scp03(0x30, &AID), level)
    }

    #[test]
    fn a_wrapped_command_is_dispatched_in_clear_and_its_whole_answer_wrapped() {
        let (mut card, mut host, ea) = scp03(SecurityLevel::FULL);
        assert_eq!(run(&mut card, &ea), (vec![], Status::Success));
        assert_eq!(
            card.vm_runs, 0,
            "SCP03 counts at INITIALIZE UPDATE, not here"
        );
        let plain = [0x80, 0xCA, 0x00, 0x66, 0x00];
        let (data, status) = run(&mut card, &host.wrap_command(&plain).unwrap());
        assert_ne!(data, [0xCA], "R-ENC and R-MAC protect the answer");
        let answer = [data, status.to_bytes().to_vec()].concat();
        assert_eq!(host.unwrap_response(&answer).unwrap(), (vec![0xCA], 0x9000));
        assert_eq!(card.seen, [(plain.to_vec(), Some(SecurityLevel::FULL))]);
    }

    #[test]
    fn scp02_counts_each_opened_channel_and_a_refused_command_ends_the_session_counted() {
        let (mut card, mut host, ea) =
            initialized::<Scp02>(CardConfig::scp02(0x20, &AID), SecurityLevel::C_MAC);
        assert_eq!(run(&mut card, &ea), (vec![], Status::Success));
        assert_eq!(card.vm_runs, 1);
        let mut wire = host.wrap_command(&[0x80, 0xCA, 0x00, 0x66, 0x00]).unwrap();
        wire[2] ^= 0x01;
        assert_eq!(run(&mut card, &wire).1, Status::SecurityStatusNotSatisfied);
        assert!(card.scp.is_none() && card.seen.is_empty());
        assert_eq!(card.vm_runs, 2);
        assert_eq!(run(&mut card, &wire).1, Status::SecureMessagingNotSupported);
    }

    #[test]
    fn only_external_authenticate_may_follow_initialize_update() {
        let (mut card, _, ea) = scp03(SecurityLevel::C_MAC);
        let early = [0x84, 0xCA, 0x00, 0x66, 0x00];
        assert_eq!(run(&mut card, &early).1, Status::SecurityStatusNotSatisfied);
        assert!(card.scp.is_none());
        assert_eq!(card.vm_runs, 0, "not an authentication failure");
        let (mut card, _, _) = scp03(SecurityLevel::C_MAC);
        let mut bad = ea.clone();
        bad[6] ^= 0x01;
        assert_eq!(run(&mut card, &bad).1, Status::VerificationFailed);
        assert!(card.scp.is_none());
        assert_eq!(card.vm_runs, 1);
    }

    #[test]
    fn a_proprietary_command_in_clear_ends_a_protected_session() {
        let (mut card, _, ea) = scp03(SecurityLevel::C_MAC);
        run(&mut card, &ea);
        let check = |card: &mut Fake, apdu: &[u8]| {
            let cmd = Command::parse(apdu).unwrap();
            admit_plain(&mut card.scp, &Cla::decode(cmd.cla).unwrap(), &cmd)
        };
        assert_eq!(check(&mut card, &[0x00, 0xB0, 0x00, 0x00, 0x10]), Ok(()));
        assert_eq!(
            check(
                &mut card,
                &[0x80, 0x50, 0x30, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0]
            ),
            Ok(())
        );
        assert!(card.scp.is_some());
        assert_eq!(
            check(&mut card, &[0x80, 0xCA, 0x00, 0x66, 0x00]),
            Err(Status::SecurityStatusNotSatisfied)
        );
        assert!(card.scp.is_none());
    }
}
