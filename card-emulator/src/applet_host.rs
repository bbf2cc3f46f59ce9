//! A GlobalPlatform host that loads and installs applets into a card it reaches through a
//! transmit function (a card in process, a `run --stdio` child): an SCP03 session on the
//! ISD with C-MAC and C-DECRYPTION, then INSTALL [for load], LOAD, INSTALL [for install].
//! For tests, benchmarks and the soak campaigns; reader-client's `gp` is the tool for users.

use apdu_specs::gp::{Delete, Install, InstallParameters, Load};
use apdu_specs::{Command, Response, Status};
use secure_channel::{scp03, SecurityLevel, StaticKeys};

/// SELECT of the GlobalPlatform ISD.
const SELECT_ISD: &[u8] = &[
    0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00, 0x00,
];

/// The largest LOAD block whose MACed and encrypted form fits a short APDU.
pub const BLOCK: usize = 239;

/// Sends one command APDU and answers the response APDU.
pub type Transmit<'t> = &'t mut dyn FnMut(&[u8]) -> Vec<u8>;

/// An open SCP03 session on the ISD.
pub struct GpHost {
    session: scp03::HostSession,
}

impl GpHost {
    /// Select the ISD and open SCP03 (KVN 00: the card's default set) with `keys`.
    pub fn open(tx: Transmit, keys: &StaticKeys) -> Result<GpHost, String> {
        let status = Response::parse(&tx(SELECT_ISD))
            .map_err(|e| e.to_string())?
            .status;
        if status != Status::Success {
            return Err(format!("SELECT ISD answered {:04X}", status.to_u16()));
        }
        let hs = scp03::HostHandshake::new(keys, 0).map_err(|e| e.to_string())?;
        let r = tx(&hs.initialize_update());
        let (session, ea) = hs
            .authenticate(&r, SecurityLevel::FULL)
            .map_err(|e| e.to_string())?;
        let r = tx(&ea);
        session.confirm(&r).map_err(|e| e.to_string())?;
        Ok(GpHost { session })
    }

    /// Send `cmd` wrapped; the plain answer and its status word.
    pub fn send(&mut self, tx: Transmit, cmd: &Command) -> Result<(Vec<u8>, u16), String> {
        let plain = cmd.to_bytes().map_err(|e| e.to_string())?;
        let wire = self
            .session
            .wrap_command(&plain)
            .map_err(|e| e.to_string())?;
        self.session
            .unwrap_response(&tx(&wire))
            .map_err(|e| e.to_string())
    }

    /// INSTALL [for load] into container `isdp` and the LOAD blocks of `module`; the status
    /// word of the first command that did not answer 9000, or 9000.
    pub fn load(
        &mut self,
        tx: Transmit,
        isdp: &[u8],
        package: &[u8],
        module: &[u8],
    ) -> Result<u16, String> {
        let install = Install::ForLoad {
            load_file_aid: package.to_vec(),
            security_domain_aid: isdp.to_vec(),
            load_parameters: Vec::new(),
        };
        let (_, sw) = self.send(tx, &install.to_command())?;
        if sw != 0x9000 {
            return Ok(sw);
        }
        for block in Load::blocks(module, BLOCK) {
            let (_, sw) = self.send(tx, &block.to_command())?;
            if sw != 0x9000 {
                return Ok(sw);
            }
        }
        Ok(0x9000)
    }

    /// INSTALL [for install and make selectable] of `applet` from `package` (its one
    /// module), with install parameters `params` (`C9`) and a storage quota.
    pub fn install(
        &mut self,
        tx: Transmit,
        package: &[u8],
        applet: &[u8],
        params: &[u8],
        storage: Option<u32>,
    ) -> Result<u16, String> {
        let install = Install::ForInstall {
            load_file_aid: package.to_vec(),
            module_aid: package.to_vec(),
            application_aid: applet.to_vec(),
            privileges: vec![0x00],
            parameters: InstallParameters {
                application: params.to_vec(),
                non_volatile_quota: storage,
            },
            make_selectable: true,
        };
        Ok(self.send(tx, &install.to_command())?.1)
    }

    /// DELETE of an instance or a load file (`related`: with its instances).
    pub fn delete(&mut self, tx: Transmit, aid: &[u8], related: bool) -> Result<u16, String> {
        let d = Delete {
            aid: aid.to_vec(),
            related,
        };
        Ok(self.send(tx, &d.to_command())?.1)
    }
}
