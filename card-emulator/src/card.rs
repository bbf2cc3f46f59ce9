//! The card: power, the one ISO 7816 dispatcher (class, channels, chaining, GET RESPONSE, Le
//! rules) and the atomic commit of each state-changing APDU; secure messaging is a layer it
//! calls ([`crate::secure`]).

use crate::channel::{Chain, Channel, Pending, NUM_CHANNELS};
use crate::commands::{self, Ctx, Outcome, Response};
use crate::secure::{self, ChannelScp};
use crate::state::CardState;
use crate::store::{MemoryStore, Store, StoreError};
use crate::vm::{Tree, Vm};
use crate::{atr, VirtualCard};
use apdu_specs::cla::{Cla, SecureMessaging};
use apdu_specs::command::{MAX_NC, MAX_NE_EXTENDED, MAX_NE_SHORT};
use apdu_specs::ins::{self, iso};
use apdu_specs::{Command, Status};
use secure_channel::SecurityLevel;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The GSM class byte (3GPP TS 51.011): SIM commands, which this card does not take.
const GSM_CLA: u8 = 0xA0;

/// A virtual card over a store. `transmit` never panics and always answers an SW.
pub struct Card {
    state: CardState,
    store: Box<dyn Store>,
    channels: [Channel; NUM_CHANNELS],
    atr: Vec<u8>,
    /// Set when a failed commit could not be rolled back: the card answers 6581 until restarted.
    broken: bool,
    /// Most response data bytes one R-APDU may carry (the transport's frame limit).
    max_response_data: usize,
    /// Unix seconds now: expiry checks of the mutual authentication. Tests set their own.
    clock: fn() -> u64,
}

/// The host's clock, in Unix seconds.
pub fn system_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn sw(status: Status) -> Vec<u8> {
    status.to_bytes().to_vec()
}

impl Card {
    /// Load the card from its store.
    pub fn open(store: Box<dyn Store>) -> Result<Card, StoreError> {
        let state = store.load()?;
        Ok(Card::with_state(state, store))
    }

    /// A card whose state lives only in memory.
    pub fn in_memory(state: CardState) -> Card {
        let store = Box::new(MemoryStore::new(state.clone()));
        Card::with_state(state, store)
    }

    fn with_state(state: CardState, store: Box<dyn Store>) -> Card {
        let atr = atr::build(&state.historical_bytes, &state.atr_protocols);
        let mut card = Card {
            state,
            store,
            channels: Default::default(),
            atr,
            broken: false,
            max_response_data: MAX_NE_EXTENDED,
            clock: system_clock,
        };
        card.clear_volatile();
        card
    }

    /// Cap one R-APDU at `max` bytes including the SW (a vpcd frame carries 65 535): longer
    /// answers are cut and the rest announced with 61xx, as for any Le smaller than the data.
    pub fn limit_response_length(&mut self, max: usize) {
        self.max_response_data = max.saturating_sub(2).clamp(1, MAX_NE_EXTENDED);
    }

    /// Replace the clock (Unix seconds) used for expiry checks.
    pub fn set_clock(&mut self, clock: fn() -> u64) {
        self.clock = clock;
    }

    /// The persistent state as the card sees it now (equal to the last commit).
    pub fn state(&self) -> &CardState {
        &self.state
    }

    fn clear_volatile(&mut self) {
        self.channels = Default::default();
        self.channels[0] = Channel::opened();
    }

    /// Put the in-memory state back to the last durable one after a failed commit.
    fn roll_back(&mut self) {
        match self.store.load() {
            Ok(s) => self.state = s,
            Err(e) => {
                tracing::error!("cannot reload the state after a failed write ({e}); the card answers 6581 until restarted");
                self.broken = true;
            }
        }
    }

    fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        if self.broken {
            return sw(Status::MemoryFailure);
        }
        let Ok(cmd) = Command::parse(apdu) else {
            return sw(Status::WrongLength);
        };
        // Class A0 is the GSM SIM's (3GPP TS 51.011 §9.2): a card that is not a SIM answers
        // 6E00 and leaves everything as it was, so a tool that probes for a SIM first does
        // not lose a pending answer or a chain on the way (ETSI TS 102 221 §10.1.1).
        if cmd.cla == GSM_CLA {
            return sw(Status::ClaNotSupported);
        }
        let Ok(cla) = Cla::decode(cmd.cla) else {
            return sw(Status::ClaNotSupported);
        };
        if ins::is_invalid_ins(cmd.ins) {
            return sw(Status::InsNotSupported);
        }
        let ch = cla.channel() as usize;
        if ch >= NUM_CHANNELS || !self.channels[ch].open {
            return sw(Status::LogicalChannelNotSupported);
        }
        if cla.secure_messaging() != SecureMessaging::None {
            self.channels[ch].pending = None;
            self.channels[ch].chain = None;
            let wrapped = secure::process(&mut OnChannel { card: self, ch }, &cla, &cmd, apdu);
            return self.shape(
                ch,
                cla.family(),
                wrapped.le,
                cmd.is_extended(),
                wrapped.reply,
            );
        }
        // ISO 7816-4 §5.3.3: GET RESPONSE and MANAGE CHANNEL are never part of a chain.
        if cla.chained() && matches!(cmd.ins, iso::GET_RESPONSE | iso::MANAGE_CHANNEL) {
            self.channels[ch].chain = None;
            return sw(Status::ChainingNotSupported);
        }
        if cmd.ins == iso::GET_RESPONSE {
            return self.get_response(ch, &cla, &cmd);
        }
        self.channels[ch].pending = None;

        // Command chaining (ISO 7816-4 §5.3.3): accumulate, answer 9000 until the last piece.
        let header = [cla.without_chaining(), cmd.ins, cmd.p1, cmd.p2];
        let chained_data;
        let cmd = match self.channels[ch].chain.take() {
            Some(chain) if chain.header != header => {
                return sw(Status::LastCommandOfChainExpected);
            }
            Some(mut chain) => {
                if chain.data.len() + cmd.data().len() > MAX_NC {
                    return sw(Status::WrongLength);
                }
                chain.data.extend_from_slice(cmd.data());
                if cla.chained() {
                    self.channels[ch].chain = Some(chain);
                    return sw(Status::Success);
                }
                chained_data = chain.data;
                Command::new(header[0], cmd.ins, cmd.p1, cmd.p2)
                    .with_data(chained_data.as_slice())
                    .with_le(cmd.le())
                    .extended(cmd.is_extended())
            }
            None if cla.chained() => {
                self.channels[ch].chain = Some(Chain {
                    header,
                    data: cmd.data().to_vec(),
                });
                return sw(Status::Success);
            }
            None => cmd,
        };

        let outcome = secure::admit_plain(&mut self.channels[ch].scp, &cla, &cmd)
            .and_then(|()| self.execute(ch, &cla, &cmd, None));
        match outcome {
            Ok(reply) => self.shape(ch, cla.family(), cmd.le(), cmd.is_extended(), reply),
            Err(status) => sw(status),
        }
    }

    /// Run `f` over the VM in runtime mode outside any handler (the secure-messaging
    /// layer's counters) and commit what it changed.
    fn with_vm<T>(&mut self, f: impl FnOnce(&mut Vm) -> T) -> Result<T, Status> {
        let mut vm = Vm::runtime(&mut self.state, self.store.as_mut());
        let out = f(&mut vm);
        let (committed, outcome) = vm.finish();
        if outcome.commit_failed {
            self.roll_back();
        }
        committed.map(|()| out)
    }

    /// Run one plain command (after chaining and unwrapping) without fitting it to Le.
    /// `secure` is the level of the secure channel it came through, if it came wrapped.
    fn execute(
        &mut self,
        ch: usize,
        cla: &Cla,
        cmd: &Command,
        secure: Option<SecurityLevel>,
    ) -> commands::Outcome {
        if cmd.ins == iso::MANAGE_CHANNEL && !cla.is_proprietary() {
            return self.manage_channel(ch, cmd);
        }
        let mut selected = self.channels[ch].selected.take();
        let mut ctx = Ctx {
            vm: Vm::runtime(&mut self.state, self.store.as_mut()),
            chan: &mut self.channels[ch],
            secure,
            clock: self.clock,
        };
        let mut outcome = match (&mut selected, cla.is_proprietary()) {
            // SELECT always belongs to the OS; the rest of an applet's class goes to it.
            (Some(app), true) => crate::applets::process(&mut ctx, app, cmd),
            (None, true) => commands::proprietary(&mut ctx, cmd),
            (_, false) => commands::interindustry(&mut ctx, cmd),
        };
        let (committed, done) = ctx.vm.finish();
        if let Err(s) = committed {
            outcome = Err(s);
        }
        // A SELECT may have chosen another applet (or a file); keep the old one otherwise.
        if self.channels[ch].selected.is_none() && !(cmd.ins == iso::SELECT && outcome.is_ok()) {
            self.channels[ch].selected = selected;
        } else if let Some(crate::applets::Selected::Loaded(mut old)) = selected {
            old.deselect();
        }
        if done.commit_failed {
            self.roll_back();
        }
        for id in done.left {
            for c in self.channels.iter_mut() {
                c.leave(Tree::Container(id));
            }
        }
        outcome
    }

    /// Fit the answer to Le (ISO 7816-4 §5.3.2; ISO 7816-3 §10.3 for 61xx and 6Cxx).
    fn shape(
        &mut self,
        ch: usize,
        family: u8,
        le: Option<usize>,
        extended: bool,
        reply: Response,
    ) -> Vec<u8> {
        let Response { mut data, status } = reply;
        if data.is_empty() {
            return sw(status);
        }
        let pend = |data: Vec<u8>| Pending {
            data,
            pos: 0,
            status,
            family,
        };
        let cap = self.max_response_data;
        match le.map(|ne| ne.min(cap)) {
            // No Le (a case 4 command sent as case 3, as T=0 does): announce the data.
            None => {
                let n = data.len();
                self.channels[ch].pending = Some(pend(data));
                sw(available(n))
            }
            Some(ne) if data.len() <= ne => {
                data.extend_from_slice(&status.to_bytes());
                data
            }
            Some(_) if !extended && data.len() <= MAX_NE_SHORT && status == Status::Success => {
                sw(Status::WrongLe(data.len() as u8))
            }
            Some(ne) => {
                let rest = data.split_off(ne);
                let n = rest.len();
                self.channels[ch].pending = Some(pend(rest));
                data.extend_from_slice(&available(n).to_bytes());
                data
            }
        }
    }

    // ISO 7816-4 §11.5.11 GET RESPONSE: CLA 00 or the class family of the command it continues.
    fn get_response(&mut self, ch: usize, cla: &Cla, cmd: &Command) -> Vec<u8> {
        let chan = &mut self.channels[ch];
        chan.chain = None;
        let Some(mut p) = chan.pending.take() else {
            return sw(Status::ConditionsNotSatisfied);
        };
        if cla.family() != 0 && cla.family() != p.family {
            return sw(Status::ClaNotSupported);
        }
        if (cmd.p1, cmd.p2) != (0, 0) {
            return sw(Status::IncorrectP1P2);
        }
        if !cmd.data().is_empty() {
            return sw(Status::WrongLength);
        }
        let ne = cmd.le().unwrap_or(MAX_NE_SHORT).min(self.max_response_data);
        let end = (p.pos + ne).min(p.data.len());
        let mut out = commands::response_data(&p.data[p.pos..end]);
        p.pos = end;
        let left = p.data.len() - end;
        if left > 0 {
            out.extend_from_slice(&available(left).to_bytes());
            chan.pending = Some(p);
        } else {
            out.extend_from_slice(&p.status.to_bytes());
        }
        out
    }

    // ISO 7816-4 §11.1.2 MANAGE CHANNEL.
    fn manage_channel(&mut self, ch: usize, cmd: &Command) -> commands::Outcome {
        if !cmd.data().is_empty() {
            return Err(Status::WrongLength);
        }
        match cmd.p1 {
            0x00 => {
                let new = match cmd.p2 {
                    0 => (1..NUM_CHANNELS)
                        .find(|c| !self.channels[*c].open)
                        .ok_or(Status::FunctionNotSupported)?,
                    n if (n as usize) < NUM_CHANNELS => {
                        if self.channels[n as usize].open {
                            return Err(Status::IncorrectP1P2);
                        }
                        n as usize
                    }
                    n if n <= apdu_specs::cla::MAX_ENCODABLE_CHANNEL => {
                        return Err(Status::LogicalChannelNotSupported)
                    }
                    _ => return Err(Status::IncorrectP1P2),
                };
                let mut fresh = Channel::opened();
                if ch != 0 {
                    // Opened from a non-basic channel: inherit its current DF (ISO 7816-4 §5.4.2),
                    // with the tree it belongs to (a position means nothing without it).
                    fresh.tree = self.channels[ch].tree;
                    fresh.current_df = self.channels[ch].current_df;
                    fresh.current_ef = self.channels[ch].current_ef;
                }
                self.channels[new] = fresh;
                Ok(if cmd.p2 == 0 {
                    Response::ok(vec![new as u8])
                } else {
                    Response::done()
                })
            }
            0x80 => {
                let target = if cmd.p2 == 0 { ch } else { cmd.p2 as usize };
                if target == 0 {
                    return Err(Status::IncorrectP1P2);
                }
                if target >= NUM_CHANNELS || !self.channels[target].open {
                    return Err(Status::LogicalChannelNotSupported);
                }
                self.channels[target] = Channel::default();
                Ok(Response::done())
            }
            _ => Err(Status::IncorrectP1P2),
        }
    }
}

/// One logical channel of the card, as the secure-messaging layer drives it.
struct OnChannel<'c> {
    card: &'c mut Card,
    ch: usize,
}

impl secure::Dispatcher for OnChannel<'_> {
    fn session(&mut self) -> &mut Option<ChannelScp> {
        &mut self.card.channels[self.ch].scp
    }

    fn dispatch(&mut self, cla: &Cla, cmd: &Command, level: Option<SecurityLevel>) -> Outcome {
        self.card.execute(self.ch, cla, cmd, level)
    }

    fn with_vm(&mut self, f: impl FnOnce(&mut Vm)) -> Result<(), Status> {
        self.card.with_vm(f)
    }
}

/// `61xx` for n bytes still available (`6100` = 256 or more).
fn available(n: usize) -> Status {
    Status::BytesAvailable(if n >= 256 { 0 } else { n as u8 })
}

impl VirtualCard for Card {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn power_on(&mut self) -> Vec<u8> {
        self.clear_volatile();
        self.atr.clone()
    }

    fn power_off(&mut self) {
        self.clear_volatile();
    }

    fn reset(&mut self) -> Vec<u8> {
        self.clear_volatile();
        self.atr.clone()
    }

    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        match catch_unwind(AssertUnwindSafe(|| self.process(apdu))) {
            Ok(r) => r,
            Err(_) => {
                tracing::error!("internal error while processing an APDU; state reloaded, volatile state cleared");
                self.roll_back();
                self.clear_volatile();
                sw(Status::NoPreciseDiagnosis)
            }
        }
    }
}
