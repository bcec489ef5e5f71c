//! A message's masked tokens in one buffer (no allocation per token).

/// Masked tokens of one message, stored back to back in one string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    buf: String,
    ends: Vec<usize>,
}

impl Tokens {
    /// No tokens.
    pub fn new() -> Tokens {
        Tokens::default()
    }

    /// Removes every token, keeping the memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no token.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Token `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }

    /// The last token.
    pub fn last(&self) -> Option<&str> {
        self.len().checked_sub(1).map(|i| self.get(i))
    }

    /// The tokens in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The tokens as owned strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }

    /// The buffer, to append the next token to (finish it with [`end_token`](Self::end_token)).
    pub(crate) fn buf(&mut self) -> &mut String {
        &mut self.buf
    }

    /// Closes the token written since the previous one; an empty token is dropped.
    pub(crate) fn end_token(&mut self) {
        if self.buf.len() > self.ends.last().copied().unwrap_or(0) {
            self.ends.push(self.buf.len());
        }
    }

    /// Appends `s` to the last token.
    pub(crate) fn extend_last(&mut self, s: &str) {
        if let Some(e) = self.ends.last_mut() {
            self.buf.push_str(s);
            *e = self.buf.len();
        }
    }
}

impl<'a> FromIterator<&'a str> for Tokens {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut t = Tokens::new();
        for s in iter {
            t.buf.push_str(s);
            t.end_token();
        }
        t
    }
}
