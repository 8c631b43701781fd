//! The output buffer: length-prefixed fields written without reallocating on the hot path.

use crate::error::Error;

/// A growable byte buffer holding `u16`-length-prefixed fields.
pub struct Out {
    buf: Vec<u8>,
    field_start: usize,
}

impl Out {
    pub fn with_capacity(cap: usize) -> Out {
        Out { buf: Vec::with_capacity(cap), field_start: 0 }
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.field_start = 0;
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.buf.as_ptr()
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Opens a field; bytes pushed until `end_field` belong to it.
    pub fn begin_field(&mut self) {
        self.field_start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
    }

    /// Closes the field opened by `begin_field`, writing its length.
    pub fn end_field(&mut self) -> Result<(), Error> {
        let len = self.buf.len() - self.field_start - 2;
        if len > u16::MAX as usize {
            return Err(Error::OverLimit);
        }
        let le = (len as u16).to_le_bytes();
        self.buf[self.field_start] = le[0];
        self.buf[self.field_start + 1] = le[1];
        Ok(())
    }

    /// Writes a whole field.
    pub fn field(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.begin_field();
        self.buf.extend_from_slice(bytes);
        self.end_field()
    }

    pub fn push(&mut self, b: u8) {
        self.buf.push(b);
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes written so far in the open field.
    pub fn current_field(&self) -> &[u8] {
        &self.buf[self.field_start + 2..]
    }

    /// Every field written so far, for native tests.
    pub fn fields(&self) -> Vec<&[u8]> {
        let mut fields = Vec::new();
        let mut pos = 0;
        while pos + 2 <= self.buf.len() {
            let len = u16::from_le_bytes([self.buf[pos], self.buf[pos + 1]]) as usize;
            let end = (pos + 2 + len).min(self.buf.len());
            fields.push(&self.buf[pos + 2..end]);
            pos = end;
        }
        fields
    }
}
