//! The authorization matrix: who tried what, what must happen, and what did.
//! Each test's cases are the README's table for its part (between
//! `<!-- matrix: <part> -->` and `<!-- /matrix: <part> -->`); a test fails
//! when the two differ, and `GOVCLOUD_BLESS=1` rewrites the README's part.

use std::sync::Mutex;

/// Whom a case's description starts with, longest first.
const ACTORS: &[&str] = &[
    "a tenant of another unit",
    "a tenant's service account",
    "a tenant",
    "a suspended unit",
    "another unit",
    "the unit",
    "a reviewer of the unit",
    "a reviewer",
    "a vendor of the unit",
    "a vendor",
    "an auditor",
    "an administrator",
    "the admin",
    "the operator's service account",
    "the operator",
    "the approval",
];

#[derive(Default)]
pub struct Matrix {
    cases: Vec<Case>,
}

struct Case {
    who: String,
    what: String,
    /// `None` when it must succeed, else words the refusal must contain.
    refused: Option<String>,
    outcome: Result<(), String>,
}

impl Matrix {
    pub fn allowed(&mut self, what: &str, outcome: Result<(), String>) {
        self.push(what, None, outcome);
    }

    pub fn refused(&mut self, what: &str, words: &str, outcome: Result<(), String>) {
        self.push(what, Some(words.into()), outcome);
    }

    fn push(&mut self, what: &str, refused: Option<String>, outcome: Result<(), String>) {
        let (who, rest) = ACTORS
            .iter()
            .find_map(|a| {
                what.strip_prefix(a)
                    .filter(|r| r.starts_with(' ') || r.starts_with(','))
                    .map(|r| ((*a).to_owned(), r.trim_start_matches([' ', ',']).to_owned()))
            })
            .unwrap_or_else(|| panic!("say who tries it: {what:?} starts with none of {ACTORS:?}"));
        self.cases.push(Case {
            who,
            what: rest,
            refused,
            outcome,
        });
    }

    /// Checks every case, then that the README's table for `part` lists
    /// exactly these cases.
    pub fn check(&self, part: &str) {
        let wrong: Vec<String> = self
            .cases
            .iter()
            .filter(|c| match (&c.refused, &c.outcome) {
                (None, Ok(())) => false,
                (Some(words), Err(message)) => !message.contains(words.as_str()),
                _ => true,
            })
            .map(|c| {
                format!(
                    "{} {}: expected {:?}, got {:?}",
                    c.who, c.what, c.refused, c.outcome
                )
            })
            .collect();
        eprintln!(
            "  {part}: {} cases, {} as expected",
            self.cases.len(),
            self.cases.len() - wrong.len()
        );
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        self.in_readme(part);
    }

    fn table(&self) -> String {
        let mut out = String::from("| who | tries | expected |\n|---|---|---|\n");
        for c in &self.cases {
            let expected = match &c.refused {
                None => "allowed".to_owned(),
                Some(words) => format!("refused: {}", words.replace('|', "\\|")),
            };
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                c.who,
                c.what.replace('|', "\\|"),
                expected
            ));
        }
        out
    }

    fn in_readme(&self, part: &str) {
        static README: Mutex<()> = Mutex::new(());
        let _one_at_a_time = README.lock().unwrap_or_else(|p| p.into_inner());
        let path = super::repo().join("README.md");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("README.md: {e}"));
        let (begin, end) = (
            format!("<!-- matrix: {part} -->\n"),
            format!("<!-- /matrix: {part} -->"),
        );
        let table = self.table();
        let section = text
            .find(&begin)
            .map(|b| b + begin.len())
            .and_then(|b| text[b..].find(&end).map(|e| (b, b + e)));
        let current = section.map(|(b, e)| &text[b..e]);
        if current == Some(table.as_str()) {
            return;
        }
        if std::env::var_os("GOVCLOUD_BLESS").is_some() {
            let (b, e) = section.unwrap_or_else(|| {
                panic!("README.md has no {begin:?} ... {end:?} to write the table into")
            });
            let updated = format!("{}{table}{}", &text[..b], &text[e..]);
            std::fs::write(&path, updated).unwrap_or_else(|e| panic!("README.md: {e}"));
            return;
        }
        panic!(
            "README.md's authorization table for {part} differs from the cases tested; \
             GOVCLOUD_BLESS=1 cargo test --test e2e -- <this test> rewrites it. Tested:\n{table}"
        );
    }
}
