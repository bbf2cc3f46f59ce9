//! The authentication applet of seed document 1 (AID `F04D4155544801`): one instance per
//! container, the enabled container's answers. It builds and signs R, verifies R' with
//! the server key the container trusts for the service, and runs the secure connection.
//! Formats and status words: `apdu-specs/docs/mutual-auth.md`.

use super::Applet;
use crate::commands::{Ctx, Outcome, Response};
use crate::state::{ContainerId, FileBody, Pending};
use crate::vm::Tree;
use apdu_specs::auth::{self, AuthCommand, Call, Certificate, ProtectedMessage, SealedAnswer};
use apdu_specs::{tlv, Command, Status};
use secure_channel::mutual::{self, SigningKey, VerifyingKey};

pub struct AuthApplet;

/// Per-channel state: which container's instance is selected (by identity; `None` only
/// before SELECT completes).
#[derive(Debug, Default)]
pub struct AuthInstance {
    pub container: Option<ContainerId>,
}

/// The EF a `provision` call's credential is written to.
pub const CREDENTIAL_EF: u16 = 0x6F10;

impl Applet for AuthApplet {
    type Instance = AuthInstance;

    fn matches(name: &[u8]) -> bool {
        name.len() >= 5 && auth::AID.starts_with(name)
    }

    fn select(ctx: &mut Ctx, session: &mut AuthInstance, _name: &[u8]) -> Outcome {
        // Only the enabled container's instance exists at runtime.
        let i = ctx.vm.enabled().ok_or(Status::FileNotFound)?;
        ctx.vm.reachable(Tree::Container(i))?;
        session.container = Some(i);
        // The container's PIN and files are the ones in reach while the applet is selected.
        ctx.chan.tree = Tree::Container(i);
        ctx.chan.current_df = 0;
        ctx.chan.current_ef = None;
        Ok(Response::ok(tlv::build(
            0x6F,
            &tlv::build(0x84, &auth::AID),
        )))
    }

    fn process(ctx: &mut Ctx, session: &mut AuthInstance, cmd: &Command) -> Outcome {
        let i = session.container.ok_or(Status::ConditionsNotSatisfied)?;
        // Runtime mode: only the enabled container's instance exists.
        ctx.vm.reachable(Tree::Container(i))?;
        match AuthCommand::parse(cmd)? {
            AuthCommand::GetRegistration(g) => {
                require_pin(ctx, i)?;
                get_registration(ctx, i, &g.service_id)
            }
            AuthCommand::VerifyServer(answer) => verify_server(ctx, i, &answer),
            // The cardholder gates every use of the connection: its PIN verified on this
            // channel since the last reset, checked before anything else is looked at.
            AuthCommand::SecureSend(call) => {
                require_pin(ctx, i)?;
                secure_send(ctx, i, &call)
            }
            AuthCommand::SecureReceive(msg) => {
                require_pin(ctx, i)?;
                secure_receive(ctx, i, &msg)
            }
            AuthCommand::GetCertificate => certificate(ctx, i),
            AuthCommand::GetIdentity => identity(ctx, i),
        }
    }
}

fn status(e: mutual::MutualError) -> Status {
    e.status()
}

/// 6982 unless the container's PIN was verified on this channel since the last reset or
/// power-on (verification is volatile: a power cycle or another channel needs it again).
fn require_pin(ctx: &Ctx, i: ContainerId) -> Result<(), Status> {
    let tree = Tree::Container(i);
    let pin = ctx
        .vm
        .pins(tree)?
        .first()
        .map(|p| p.reference)
        .ok_or(Status::SecurityStatusNotSatisfied)?;
    if ctx.chan.is_verified(tree, pin) {
        Ok(())
    } else {
        Err(Status::SecurityStatusNotSatisfied)
    }
}

// GET REGISTRATION: `80 10 00 00 Lc {81 service id}`: R signed and sealed to the server
// key the container trusts for the service.
fn get_registration(ctx: &mut Ctx, i: ContainerId, service: &str) -> Outcome {
    let c = ctx.vm.container(i)?;
    let anchor = c
        .trust_anchors
        .iter()
        .find(|a| a.service == service)
        .ok_or(Status::NoTrustAnchor)?;
    let server = VerifyingKey::from_sec1(&anchor.public_key).map_err(|_| Status::NoTrustAnchor)?;
    let se_key =
        SigningKey::from_bytes(&c.auth.se_key).map_err(|_| Status::ReferenceDataNotUsable)?;
    let cert =
        Certificate::parse(&c.auth.certificate).map_err(|_| Status::ReferenceDataNotUsable)?;
    let counter = c
        .auth
        .counter
        .checked_add(1)
        .ok_or(Status::ConditionsNotSatisfied)?;
    let (pending, sealed) =
        mutual::se_build_registration(&se_key, &cert, service, counter, &server).map_err(status)?;
    let answer = sealed.to_bytes();
    let auth = ctx.vm.auth_mut(i)?;
    auth.counter = counter;
    auth.pending = Some(Pending(pending));
    Ok(Response::ok(answer))
}

// VERIFY SERVER: `80 12 00 00 Lc {78 sealed R'}`.
fn verify_server(ctx: &mut Ctx, i: ContainerId, answer: &SealedAnswer) -> Outcome {
    let now = ctx.vm.trusted_now((ctx.clock)());
    let c = ctx.vm.container(i)?;
    let Some(Pending(pending)) = &c.auth.pending else {
        return Err(Status::ConditionsNotSatisfied);
    };
    let anchor = c
        .trust_anchors
        .iter()
        .find(|a| a.service == pending.service_id())
        .ok_or(Status::NoTrustAnchor)?;
    let server = VerifyingKey::from_sec1(&anchor.public_key).map_err(|_| Status::NoTrustAnchor)?;
    let verified = mutual::se_verify_answer(pending, &server, answer).map_err(status)?;
    let opened = verified.open_connection(now);
    // The server's time is trusted once R' is authenticated, a refusal's too: the floor
    // rises (durably, whatever the grant says) so a host clock rolled back revives nothing.
    ctx.vm.raise_time_floor(verified.server_time());
    let connection = opened.map_err(status)?;
    let summary = auth::ConnectionSummary {
        scope: connection.scope().to_vec(),
        expiry: connection.expiry(),
    };
    let auth = ctx.vm.auth_mut(i)?;
    auth.pending = None;
    auth.connection = Some(connection);
    Ok(Response::ok(summary.to_bytes()))
}

/// The container's open connection, still within its grant's expiry.
fn fresh_connection(c: &crate::state::Container, now: u64) -> Result<&mutual::Connection, Status> {
    let conn = c
        .auth
        .connection
        .as_ref()
        .ok_or(Status::NoSecureConnection)?;
    conn.check_fresh(now).map_err(status)?;
    Ok(conn)
}

// SECURE SEND: `80 14 00 00 Lc {81 call 82 data}` -> the protected up message.
fn secure_send(ctx: &mut Ctx, i: ContainerId, call: &Call) -> Outcome {
    let now = ctx.vm.trusted_now((ctx.clock)());
    let conn = fresh_connection(ctx.vm.container(i)?, now)?;
    conn.check_scope(&call.name).map_err(status)?;
    let mut next = conn.clone();
    let msg = next.seal_call(call).map_err(status)?;
    ctx.vm.auth_mut(i)?.connection = Some(next);
    Ok(Response::ok(msg.to_bytes()))
}

// SECURE RECEIVE: `80 16 00 00 Lc {73 down message}` -> the result, the credential stored.
fn secure_receive(ctx: &mut Ctx, i: ContainerId, msg: &ProtectedMessage) -> Outcome {
    let now = ctx.vm.trusted_now((ctx.clock)());
    let c = ctx.vm.container(i)?;
    let conn = fresh_connection(c, now)?;
    // Open a copy: a refused message must change nothing, and a result we cannot act on
    // (no room for the credential) must not consume the counter either.
    let mut next = conn.clone();
    let mut result = next
        .open_result(msg)
        .map_err(|_| Status::MessageAuthenticationFailed)?;
    if let Some(credential) = result.credential.take() {
        let tree = Tree::Container(i);
        let ef = c
            .files
            .iter()
            .position(|f| f.fid == CREDENTIAL_EF)
            .ok_or(Status::FileNotFound)?;
        let FileBody::Transparent { data } = &c.files[ef].body else {
            return Err(Status::IncompatibleFileStructure);
        };
        if credential.len() > data.len() {
            return Err(Status::NotEnoughMemory);
        }
        let FileBody::Transparent { data } = &mut ctx.vm.file_mut(tree, ef)?.body else {
            return Err(Status::IncompatibleFileStructure);
        };
        data.fill(0);
        data[..credential.len()].copy_from_slice(&credential);
    }
    ctx.vm.auth_mut(i)?.connection = Some(next);
    Ok(Response::ok(result.to_bytes()))
}

// GET DATA `80 CA 7F 21`: the certificate.
fn certificate(ctx: &mut Ctx, i: ContainerId) -> Outcome {
    let c = ctx.vm.container(i)?;
    if c.auth.certificate.is_empty() {
        return Err(Status::ReferencedDataNotFound);
    }
    Ok(Response::ok(c.auth.certificate.clone()))
}

// GET DATA `80 CA 00 5A`: the container identity (ICCID, ISD-P AID, certificate subject).
fn identity(ctx: &mut Ctx, i: ContainerId) -> Outcome {
    let eid = ctx.vm.eid();
    let c = ctx.vm.container(i)?;
    let mut out = tlv::build(0x5A, &c.iccid);
    out.extend(tlv::build(0x4F, &c.isdp_aid));
    out.extend(tlv::build(0x5F20, &[eid, c.iccid.as_slice()].concat()));
    Ok(Response::ok(out))
}
