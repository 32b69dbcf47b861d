//! The letters as a clerk prints them: each HTML letter is rendered by
//! headless Chromium (Debian's `chromium`, with `fonts-noto-cjk`) to a PNG and
//! to an A4 PDF, whose text is read back with poppler's `pdftotext`. `.ci/run`
//! installs the three packages.

use std::path::{Path, PathBuf};
use std::process::Command;

use govcloud::api::{ChangeRequest, CloudResourceRequest, Tenancy};
use govcloud::letters::{self, Letter};

fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/letters")
        .join(name);
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn tool(name: &str) -> PathBuf {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "{name} is not installed: apt-get install chromium fonts-noto-cjk poppler-utils (.ci/run does)"
        )
    })
}

/// Runs headless Chromium on a file with extra arguments, in its own profile.
fn chromium(dir: &Path, page: &Path, args: &[String]) {
    let out = Command::new(tool("chromium"))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Width and height from a PNG's header.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "not a PNG"
    );
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Runs one of poppler's tools on a PDF and returns what it printed.
fn poppler(tool_name: &str, args: &[&Path]) -> String {
    let out = Command::new(tool(tool_name)).args(args).output().unwrap();
    assert!(out.status.success(), "{tool_name} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// Prints one letter and checks what a clerk would see on the paper.
fn print(name: &str, letter: &Letter, title: &str, pages: usize) {
    let dir = std::env::temp_dir().join(format!("govcloud-print-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join(format!("{name}.html"));
    std::fs::write(&page, letter.html()).unwrap();
    let blank = dir.join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();

    // A4 at 96 dpi is 794 x 1123 pixels.
    let png = dir.join(format!("{name}.png"));
    let blank_png = dir.join("blank.png");
    let window = "--window-size=794,1123".to_owned();
    chromium(
        &dir,
        &page,
        &[format!("--screenshot={}", png.display()), window.clone()],
    );
    chromium(
        &dir,
        &blank,
        &[format!("--screenshot={}", blank_png.display()), window],
    );
    let bytes = std::fs::read(&png).unwrap();
    let blank_bytes = std::fs::read(&blank_png).unwrap();
    assert_eq!(png_size(&bytes), (794, 1123));
    // Text and rules compress far worse than an empty white page.
    assert!(
        bytes.len() > 10 * blank_bytes.len(),
        "{name}.png is {} bytes, a blank page {}: the letter did not render",
        bytes.len(),
        blank_bytes.len()
    );

    let pdf = dir.join(format!("{name}.pdf"));
    chromium(
        &dir,
        &page,
        &[
            format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer".to_owned(),
        ],
    );
    let info = poppler("pdfinfo", &[&pdf]);
    assert!(info.contains("(A4)"), "not A4:\n{info}");
    let printed: Option<usize> = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok());
    assert_eq!(printed, Some(pages), "pages of {name}:\n{info}");
    // The text read back from the PDF carries the Chinese title: the glyphs
    // came from a CJK font, not boxes.
    let text = poppler("pdftotext", &[&pdf, Path::new("-")]);
    assert!(
        text.lines().any(|l| l.trim() == title),
        "the title {title} is not in the printed text:\n{text}"
    );
    println!(
        "{name}: PNG {} bytes (blank page {}), PDF {} pages, title found",
        bytes.len(),
        blank_bytes.len(),
        pages
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn art12_the_application_prints_on_a4_with_its_chinese_title() {
    let request: CloudResourceRequest = fixture("request.yaml");
    let letter = letters::application(&request);
    print(
        "application",
        &letter,
        "关于财政金融部OA办公系统项目入驻政务云的申请",
        3,
    );
}

#[test]
fn art14_the_opening_confirmation_prints_on_a4_with_its_chinese_title() {
    let request: CloudResourceRequest = fixture("request.yaml");
    let tenancy: Tenancy = fixture("tenancy.yaml");
    let letter = letters::opening(&tenancy, letters::filed_on(&request)).unwrap();
    print("opening", &letter, "政务云资源开通确认函", 2);
}

#[test]
fn art19_the_cancellation_form_prints_on_a4_with_its_chinese_title() {
    let change: ChangeRequest = fixture("change-terminate.yaml");
    let letter = letters::change(&change).unwrap();
    print(
        "change",
        &letter,
        "济南政务云计算中心云服务资源变更/注销申请表",
        1,
    );
}
