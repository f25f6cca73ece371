//! The project's randomness (`rand_core` 0.10) offered to `frost-ed25519`, which takes
//! `rand_core` 0.6's traits.

use frost_ed25519::rand_core as rand_core_06;

/// A borrowed `rand_core` 0.10 generator seen through `rand_core` 0.6's traits.
pub(crate) struct Compat<'a, R: ?Sized>(pub(crate) &'a mut R);

impl<R: rand_core::CryptoRng + ?Sized> rand_core_06::RngCore for Compat<'_, R> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core_06::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

/// The wrapped generator is cryptographic, as its `CryptoRng` bound says.
impl<R: rand_core::CryptoRng + ?Sized> rand_core_06::CryptoRng for Compat<'_, R> {}
