//! The contract between a card and whatever carries APDUs to it (vpcd, stdio, the
//! terminal's in-process mode), declared here so neither side depends on the other.

/// What every transport (vpcd, stdio, in-process) drives: a card with power and APDUs.
pub trait VirtualCard {
    /// The ATR; cheap, callable in any power state (vpcd asks on every presence poll).
    fn atr(&self) -> Vec<u8>;
    /// Cold power-on: volatile state cleared; returns the ATR.
    fn power_on(&mut self) -> Vec<u8>;
    /// Power off: volatile state (selection, security status, channels) cleared.
    fn power_off(&mut self);
    /// Warm reset: like power off + on; returns the ATR.
    fn reset(&mut self) -> Vec<u8>;
    /// One C-APDU in, one R-APDU out (always at least the 2 status bytes).
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8>;
}
