//! The paper forms of the measures, rendered back from the objects:
//!
//! * Attachment 1, the application letter (关于XX项目入驻政务云的申请) and the
//!   resource demand form (济南政务云计算中心云服务资源需求表), from a
//!   CloudResourceRequest;
//! * Attachment 2, the opening confirmation letter (政务云资源开通确认函) and
//!   the unit's reply (回函), from a Tenancy;
//! * Attachment 3, the change or cancellation form
//!   (济南政务云计算中心云服务资源变更/注销申请表), from a ChangeRequest.
//!
//! Each letter is a small document model, rendered as print-ready A4 HTML or as
//! Markdown. Dates are written the Chinese way (2026年11月27日, Beijing time);
//! where the paper has a seal, the letter leaves the space blank. Pure: the
//! objects come in, text goes out, nothing here reads a clock or a cluster.

use std::fmt::Write as _;

use jiff::civil::Date;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::common::{Architecture, ReviewRecord};
use crate::api::request::{DataPlatformAccess, Sharing};
use crate::api::{
    ChangeAction, ChangeRequest, CloudResourceRequest, Decision, Resources, ServiceType, Tenancy,
};
use crate::calendar::local_date;

/// Why a letter cannot be written yet.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error(
        "tenancy {0} has not been delivered yet: there is no opening to confirm (status.deliveredAt)"
    )]
    NotDelivered(String),
    #[error(
        "the operator has not filled in change request {0} yet (status.before); try again in a moment"
    )]
    NotFilledIn(String),
}

/// A letter: its title (the HTML page title) and what is printed, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Letter {
    pub title: String,
    pub blocks: Vec<Block>,
}

/// What a letter is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    /// A centred title.
    Title(String),
    /// The addressee, flush left, followed by a colon on paper.
    Salutation(String),
    /// A paragraph, indented by two characters as Chinese letters are.
    Paragraph(String),
    /// Lines printed flush left without indentation (lists of attachments).
    Plain(Vec<String>),
    /// The sender and date, right-aligned, with room for a seal above the date.
    Signature { sender: String, date: Option<Date> },
    /// A bordered form of six columns.
    Form(Vec<Row>),
    /// A new sheet of paper.
    PageBreak,
}

/// One row of a form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row {
    /// Label and value pairs across the row; the last value spans the rest.
    Fields(Vec<(String, String)>),
    /// A label over the whole width, then its text (需求说明).
    Wide { label: String, text: String },
    /// An opinion box: a label, the opinion if one was given, and the seal
    /// space with its date (blank when undecided).
    Opinion {
        label: String,
        opinion: Option<String>,
        date: Option<Date>,
    },
}

/// The number of columns of every form (three label/value pairs).
const COLUMNS: usize = 6;

/// 2026年11月27日.
pub fn chinese_date(day: Date) -> String {
    format!("{}年{}月{}日", day.year(), day.month(), day.day())
}

/// The date blank a clerk fills in by hand.
const DATE_BLANK: &str = "　　　　年　　月　　日";

fn date_or_blank(day: Option<Date>) -> String {
    day.map(chinese_date)
        .unwrap_or_else(|| DATE_BLANK.to_owned())
}

fn day_of(t: &Time) -> Date {
    local_date(t.0)
}

/// A size in GiB as the forms write it: `500G`, `1T`, `1.5T`.
pub fn size(gib: u64) -> String {
    if gib < 1024 {
        return format!("{gib}G");
    }
    let hundredths = (u128::from(gib) * 100).div_ceil(1024);
    let whole = hundredths / 100;
    match hundredths % 100 {
        0 => format!("{whole}T"),
        f if f % 10 == 0 => format!("{whole}.{}T", f / 10),
        f => format!("{whole}.{f:02}T"),
    }
}

/// The configuration, one line per item, in the words of the forms.
pub fn configuration(r: &Resources) -> Vec<String> {
    let mut lines = Vec::new();
    for g in &r.vm_groups {
        let mut each = format!(
            "{}核CPU、{}G内存、系统盘{}",
            g.vcpu,
            g.memory_gib,
            size(u64::from(g.system_disk_gib))
        );
        if g.data_disk_gib > 0 {
            let _ = write!(each, "、数据盘{}", size(u64::from(g.data_disk_gib)));
        }
        let high_end = if g.high_end { "（高端）" } else { "" };
        lines.push(format!(
            "虚拟服务器 {}：{}台{high_end}，每台{each}，{}，{}",
            g.name,
            g.count,
            g.image,
            match g.architecture {
                Architecture::Amd64 => "x86（amd64）",
                Architecture::Arm64 => "ARM（arm64）",
            }
        ));
    }
    for v in &r.cloud_storage {
        let high_end = if v.high_end { "，高端" } else { "" };
        lines.push(format!(
            "云存储 {}：{}（{}{high_end}）",
            v.name,
            size(u64::from(v.size_gib)),
            v.class
        ));
    }
    if r.backup_storage_gib > 0 {
        lines.push(format!(
            "备份存储：{}",
            size(u64::from(r.backup_storage_gib))
        ));
    }
    if r.public_ips > 0 {
        lines.push(format!("互联网IP地址：{}个", r.public_ips));
    }
    if r.bandwidth_mbps > 0 {
        lines.push(format!("互联网带宽：{}M", r.bandwidth_mbps));
    }
    if lines.is_empty() {
        lines.push("无".to_owned());
    }
    lines
}

/// The quantities sentence of the application letter.
fn quantities(r: &Resources) -> String {
    let storage: u64 = r.cloud_storage.iter().map(|v| u64::from(v.size_gib)).sum();
    format!(
        "需虚拟服务器{}台，云存储{}，备份存储{}，互联网IP地址{}个，互联网带宽{}M",
        r.vm_count(),
        size(storage),
        size(u64::from(r.backup_storage_gib)),
        r.public_ips,
        r.bandwidth_mbps
    )
}

/// The four rows of checkboxes of the demand form, ticked as requested.
fn service_rows(ticked: &[ServiceType], other: Option<&str>) -> String {
    let rows: [&[ServiceType]; 4] = [
        &ServiceType::ALL[0..7],
        &ServiceType::ALL[7..13],
        &ServiceType::ALL[13..26],
        &ServiceType::ALL[26..32],
    ];
    let mut text = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|s| format!("{}{}", tick(ticked.contains(s)), s.label_zh()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(other) = other.filter(|_| ticked.iter().any(|s| s.label_zh() == "其他")) {
        let _ = write!(text, "\n其他：{other}");
    }
    text
}

fn tick(on: bool) -> &'static str {
    if on { "■" } else { "□" }
}

fn access_row(ticked: &[DataPlatformAccess]) -> String {
    [
        (DataPlatformAccess::File, "文件接入"),
        (DataPlatformAccess::Interface, "接口接入"),
        (DataPlatformAccess::Database, "数据库接入"),
    ]
    .iter()
    .map(|(a, label)| format!("{}{label}", tick(ticked.contains(a))))
    .collect::<Vec<_>>()
    .join(" ")
}

fn sharing(s: Sharing) -> &'static str {
    match s {
        Sharing::Unconditional => "无条件共享",
        Sharing::Conditional => "有条件共享",
        Sharing::NotShared => "不予共享",
    }
}

/// The management department's opinion: the last decision that settled the
/// form (approval, rejection, return), with its date.
fn management_opinion(reviews: &[ReviewRecord]) -> (Option<String>, Option<Date>) {
    let Some(r) = reviews.iter().rev().find(|r| {
        matches!(
            r.decision,
            Decision::Approve | Decision::Reject | Decision::Return
        )
    }) else {
        return (None, None);
    };
    let verdict = match r.decision {
        Decision::Approve => "同意",
        Decision::Reject => "不同意",
        _ => "退回补充材料",
    };
    let opinion = r.opinion.clone().unwrap_or_else(|| format!("{verdict}。"));
    (Some(opinion), Some(day_of(&r.decided_at)))
}

fn contact_row(label: &str, c: &crate::api::Contact) -> Row {
    Row::Fields(vec![
        (label.to_owned(), c.name.clone()),
        ("联系电话".to_owned(), c.phone.to_string()),
        ("邮箱".to_owned(), c.email.to_string()),
    ])
}

fn unit_opinion_label() -> String {
    "申请单位意见（所属事业单位同时须由主管部门盖章）：".to_owned()
}

/// When a request was filed: when the operator first saw it, else when it
/// was created.
pub fn filed_on(request: &CloudResourceRequest) -> Option<Date> {
    request
        .status
        .as_ref()
        .and_then(|s| s.submitted_at.as_ref())
        .or(request.metadata.creation_timestamp.as_ref())
        .map(day_of)
}

/// Attachment 1: the application letter and the resource demand form.
pub fn application(request: &CloudResourceRequest) -> Letter {
    let (title, mut blocks) = application_letter(request);
    blocks.push(demand_form(request));
    Letter { title, blocks }
}

/// The application letter itself, up to the demand form's title.
fn application_letter(request: &CloudResourceRequest) -> (String, Vec<Block>) {
    let s = &request.spec;
    let system = &s.system.name;
    let title = format!("关于{system}项目入驻政务云的申请");
    let mut ask = format!(
        "现根据《济南新旧动能转换起步区政务云管理办法》等相关文件，申请入驻政务云，{}",
        quantities(&s.resources)
    );
    match &s.security_needs {
        Some(needs) => {
            let _ = write!(
                ask,
                "，另对安全等有以下需求：{}",
                needs.trim_end_matches('。')
            );
        }
        None => ask.push_str("，对安全等无其他需求"),
    }
    ask.push_str("，详见附件。");
    if let Some(note) = &s.high_end_note {
        let _ = write!(ask, "高端虚拟机和存储特殊说明：{note}");
    }
    let mut blocks = vec![
        Block::Title(title.clone()),
        Block::Salutation("数字城市部".to_owned()),
        Block::Paragraph(s.basis.clone()),
        Block::Paragraph(format!("{system}项目主要实现功能及模块：{}", s.functions)),
        Block::Paragraph(format!("{system}项目建设意义：{}", s.significance)),
        Block::Paragraph(ask),
    ];
    if let Some(e) = &s.emergency {
        blocks.push(Block::Paragraph(format!(
            "因情况紧急，申请先行开通（紧急原因：{}），相关手续于开通后10个工作日内补齐。",
            e.reason
        )));
    }
    blocks.extend([
        Block::Plain(vec![
            "附件：1. 政务云资源需求表".to_owned(),
            "　　　2. 政务云上云业务系统需求说明".to_owned(),
        ]),
        Block::Signature {
            sender: format!("政务云使用单位（盖章）：{}", s.unit.name),
            date: filed_on(request),
        },
        Block::PageBreak,
        Block::Title("济南政务云计算中心云服务资源需求表".to_owned()),
    ]);

    (title, blocks)
}

/// 济南政务云计算中心云服务资源需求表: the demand form, with the
/// management department's opinion once a reviewer decided.
fn demand_form(request: &CloudResourceRequest) -> Block {
    let s = &request.spec;
    let system = &s.system.name;
    let unit = match &s.unit.supervising_department {
        Some(dept) => format!("{}（主管部门：{dept}）", s.unit.name),
        None => s.unit.name.clone(),
    };
    let mut details = configuration(&s.resources);
    if let Some(note) = &s.high_end_note {
        details.push(format!("高端虚拟机和存储说明：{note}"));
    }
    details.push(format!("需求说明：{}", s.requirements));
    details.push("信息资源目录：".to_owned());
    for (i, r) in s.information_resources.iter().enumerate() {
        let mut line = format!("{}. {}（{}）", i + 1, r.name, sharing(r.sharing));
        if let Some(d) = &r.description {
            let _ = write!(line, "：{d}");
        }
        details.push(line);
    }
    let (opinion, decided) = management_opinion(
        request
            .status
            .as_ref()
            .map(|st| st.reviews.as_slice())
            .unwrap_or_default(),
    );
    Block::Form(vec![
        Row::Fields(vec![("单位名称".to_owned(), unit)]),
        contact_row("信息化负责人", &s.it_lead),
        contact_row("联系人", &s.contact),
        Row::Fields(vec![
            ("系统名称".to_owned(), system.clone()),
            ("计划使用时间".to_owned(), chinese_date(s.planned_start)),
        ]),
        Row::Fields(vec![("主要用途".to_owned(), s.system.purpose.clone())]),
        Row::Fields(vec![(
            "申请业务类型".to_owned(),
            service_rows(&s.service_types, s.other_services.as_deref()),
        )]),
        Row::Fields(vec![(
            "接入城市大数据平台方式".to_owned(),
            access_row(&s.data_platform_access),
        )]),
        Row::Wide {
            label: "需求说明（详细说明申请业务类型、配置及数量，每个应用系统需提供本系统信息资源目录及接入区大数据平台方案，大型应用需求需附技术部署方案，并提供业务量规模和资源需求的测算依据）：".to_owned(),
            text: details.join("\n"),
        },
        Row::Opinion {
            label: unit_opinion_label(),
            opinion: None,
            date: None,
        },
        Row::Opinion {
            label: "管理部门意见：".to_owned(),
            opinion,
            date: decided,
        },
    ])
}

/// Attachment 2: the opening confirmation letter and the unit's reply, for a
/// delivered tenancy. `applied_on` is the day the request was filed
/// ([`filed_on`]), blank when the request is gone.
pub fn opening(tenancy: &Tenancy, applied_on: Option<Date>) -> Result<Letter, Error> {
    let name = tenancy.metadata.name.clone().unwrap_or_default();
    let status = tenancy.status.as_ref();
    let delivered = status
        .and_then(|s| s.delivered_at.as_ref())
        .map(day_of)
        .ok_or(Error::NotDelivered(name))?;
    let confirmed = status
        .and_then(|s| s.delivery_confirmed_at.as_ref())
        .map(day_of);
    let s = &tenancy.spec;
    let applied = date_or_blank(applied_on);
    let delivered_text = chinese_date(delivered);
    let mut opened = vec!["开通资源：".to_owned()];
    opened.extend(configuration(&s.allocation));
    Ok(Letter {
        title: "政务云资源开通确认函".to_owned(),
        blocks: vec![
            Block::Title("政务云资源开通确认函".to_owned()),
            Block::Salutation(s.unit_name.clone()),
            Block::Paragraph(format!(
                "你单位{applied}申请的关于{}项目的政务云资源，已于{delivered_text}完成开通，请予以确认。",
                s.system_name
            )),
            Block::Plain(opened),
            Block::Signature {
                sender: "数字城市部".to_owned(),
                date: Some(delivered),
            },
            Block::PageBreak,
            Block::Title("回　函".to_owned()),
            Block::Salutation("数字城市部".to_owned()),
            Block::Paragraph(format!(
                "你部政务云资源开通确认函已收悉，经审核，我单位{applied}申请的关于{}项目的政务云资源，于{delivered_text}开通并正式运行，现予以确认。",
                s.system_name
            )),
            Block::Signature {
                sender: format!("政务云使用单位（盖章）：{}", s.unit_name),
                date: confirmed,
            },
        ],
    })
}

/// Attachment 3: the change or cancellation form, once the operator has
/// filled in what it knows from the tenancy.
pub fn change(change: &ChangeRequest) -> Result<Letter, Error> {
    let name = change.metadata.name.clone().unwrap_or_default();
    let status = change.status.as_ref();
    let before = status
        .and_then(|s| s.before.as_ref())
        .ok_or(Error::NotFilledIn(name))?;
    let s = &change.spec;
    let known = |v: Option<&String>| v.cloned().unwrap_or_default();
    let mut reason = s.reason.clone();
    if let Some(code) = s.reason_code {
        let _ = write!(reason, "\n停用情形：{}", code.label_zh());
    }
    if let Some(day) = s.effective_date {
        let _ = write!(reason, "\n拟于{}起停止使用", chinese_date(day));
    }
    let after = match (s.action, &s.after) {
        (ChangeAction::Terminate, _) | (_, None) => "注销".to_owned(),
        (ChangeAction::Modify, Some(after)) => configuration(after).join("\n"),
    };
    let (opinion, decided) =
        management_opinion(status.map(|s| s.reviews.as_slice()).unwrap_or_default());
    let title = "济南政务云计算中心云服务资源变更/注销申请表".to_owned();
    Ok(Letter {
        title: title.clone(),
        blocks: vec![
            Block::Title(title),
            Block::Form(vec![
                Row::Fields(vec![(
                    "单位名称".to_owned(),
                    known(status.and_then(|s| s.unit_name.as_ref())),
                )]),
                contact_row("信息化负责人", &s.it_lead),
                contact_row("技术联系人", &s.technical_contact),
                Row::Fields(vec![(
                    "系统名称".to_owned(),
                    known(status.and_then(|s| s.system_name.as_ref())),
                )]),
                Row::Fields(vec![(
                    "主要用途".to_owned(),
                    known(status.and_then(|s| s.purpose.as_ref())),
                )]),
                Row::Fields(vec![("变更/注销原因".to_owned(), reason)]),
                Row::Fields(vec![(
                    "变更/注销前配置".to_owned(),
                    configuration(before).join("\n"),
                )]),
                Row::Fields(vec![("变更/注销后配置".to_owned(), after)]),
                Row::Opinion {
                    label: "申请单位意见（所属事业单位同时需由主管部门盖章）：".to_owned(),
                    opinion: None,
                    date: None,
                },
                Row::Opinion {
                    label: "管理部门意见：".to_owned(),
                    opinion,
                    date: decided,
                },
            ]),
        ],
    })
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

fn md_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

/// The page set-up and typography of the printed forms: A4, 仿宋 body and
/// 宋体 headings where installed, Noto CJK otherwise.
const STYLE: &str = "@page { size: A4; margin: 20mm 18mm; }
body { font-family: \"FangSong\", \"STFangsong\", \"Noto Serif CJK SC\", \"Noto Sans CJK SC\", serif; font-size: 12pt; line-height: 1.8; color: #000; margin: 0; }
h1 { font-family: \"SimSun\", \"Noto Serif CJK SC\", \"Noto Sans CJK SC\", serif; font-size: 18pt; font-weight: bold; text-align: center; margin: 0 0 1.2em; }
p { margin: 0 0 0.4em; }
p.indent { text-indent: 2em; }
div.signature { text-align: right; margin: 2.5em 2em 0 0; }
div.signature p.seal { min-height: 3em; }
div.page-break { break-after: page; page-break-after: always; }
table.form { width: 100%; border-collapse: collapse; table-layout: fixed; }
table.form tr { break-inside: avoid; page-break-inside: avoid; }
table.form td { border: 1px solid #000; padding: 3pt 5pt; line-height: 1.5; vertical-align: middle; overflow-wrap: anywhere; }
table.form td.label { text-align: center; }
table.form td.wide { vertical-align: top; }
table.form td.opinion { height: 7.5em; vertical-align: top; }
table.form div.seal { text-align: right; margin-top: 1em; padding-right: 2em; }
@media screen { body { max-width: 170mm; margin: 20mm auto; } }
";

impl Letter {
    /// A complete HTML page, laid out for A4 paper.
    pub fn html(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
            html_escape(&self.title)
        );
        for block in &self.blocks {
            match block {
                Block::Title(t) => {
                    let _ = writeln!(out, "<h1>{}</h1>", html_escape(t));
                }
                Block::Salutation(t) => {
                    let _ = writeln!(out, "<p>{}：</p>", html_escape(t));
                }
                Block::Paragraph(t) => {
                    let _ = writeln!(out, "<p class=\"indent\">{}</p>", html_escape(t));
                }
                Block::Plain(lines) => {
                    for l in lines {
                        let _ = writeln!(out, "<p>{}</p>", html_escape(l));
                    }
                }
                Block::Signature { sender, date } => {
                    let _ = writeln!(
                        out,
                        "<div class=\"signature\">\n<p class=\"seal\">{}</p>\n<p>{}</p>\n</div>",
                        html_escape(sender),
                        date_or_blank(*date)
                    );
                }
                Block::PageBreak => out.push_str("<div class=\"page-break\"></div>\n"),
                Block::Form(rows) => {
                    out.push_str("<table class=\"form\">\n<colgroup><col style=\"width:14%\"><col style=\"width:18%\"><col style=\"width:12%\"><col style=\"width:20%\"><col style=\"width:9%\"><col style=\"width:27%\"></colgroup>\n");
                    for row in rows {
                        out.push_str("<tr>");
                        html_row(&mut out, row);
                        out.push_str("</tr>\n");
                    }
                    out.push_str("</table>\n");
                }
            }
        }
        out.push_str("</body>\n</html>\n");
        out
    }

    /// The same letter in Markdown: a form becomes a two-column table.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for block in &self.blocks {
            match block {
                Block::Title(t) => {
                    let _ = writeln!(out, "# {}\n", md_escape(t));
                }
                Block::Salutation(t) => {
                    let _ = writeln!(out, "{}：\n", md_escape(t));
                }
                Block::Paragraph(t) => {
                    let _ = writeln!(out, "　　{}\n", md_escape(t));
                }
                Block::Plain(lines) => {
                    let lines: Vec<_> = lines.iter().map(|l| md_escape(l)).collect();
                    let _ = writeln!(out, "{}\n", lines.join("<br>\n"));
                }
                Block::Signature { sender, date } => {
                    let _ = writeln!(
                        out,
                        "<p align=\"right\">{}<br><br><br>{}</p>\n",
                        md_escape(sender),
                        date_or_blank(*date)
                    );
                }
                Block::PageBreak => out.push_str("---\n\n"),
                Block::Form(rows) => {
                    out.push_str("| 项目 | 内容 |\n| --- | --- |\n");
                    for row in rows {
                        md_row(&mut out, row);
                    }
                    out.push('\n');
                }
            }
        }
        out
    }
}

fn html_row(out: &mut String, row: &Row) {
    match row {
        Row::Fields(fields) => {
            let mut used = 0;
            for (i, (label, value)) in fields.iter().enumerate() {
                let last = i + 1 == fields.len();
                let span = if last { COLUMNS - used - 1 } else { 1 };
                let _ = write!(
                    out,
                    "<td class=\"label\">{}</td><td colspan=\"{span}\">{}</td>",
                    html_escape(label),
                    html_escape(value)
                );
                used += 1 + span;
            }
        }
        Row::Wide { label, text } => {
            let _ = write!(
                out,
                "<td class=\"wide\" colspan=\"{COLUMNS}\">{}<br>{}</td>",
                html_escape(label),
                html_escape(text)
            );
        }
        Row::Opinion {
            label,
            opinion,
            date,
        } => {
            let _ = write!(
                out,
                "<td class=\"opinion\" colspan=\"{COLUMNS}\">{}<br>{}<div class=\"seal\">（公　章）<br>{}</div></td>",
                html_escape(label),
                opinion.as_deref().map(html_escape).unwrap_or_default(),
                date_or_blank(*date)
            );
        }
    }
}

fn md_row(out: &mut String, row: &Row) {
    match row {
        Row::Fields(fields) => {
            for (label, value) in fields {
                let _ = writeln!(out, "| {} | {} |", md_escape(label), md_escape(value));
            }
        }
        Row::Wide { label, text } => {
            let _ = writeln!(out, "| {} | {} |", md_escape(label), md_escape(text));
        }
        Row::Opinion {
            label,
            opinion,
            date,
        } => {
            let _ = writeln!(
                out,
                "| {} | {}<br><br>（公　章）<br>{} |",
                md_escape(label),
                opinion.as_deref().map(md_escape).unwrap_or_default(),
                date_or_blank(*date)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/letters")
    }

    fn input<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let text = std::fs::read_to_string(dir().join(name)).unwrap();
        serde_saphyr::from_str(&text).unwrap()
    }

    /// Compares a rendering with its golden file; `GOVCLOUD_BLESS=1` writes
    /// the file instead (review the diff before committing it).
    fn golden(name: &str, actual: &str) {
        let path = dir().join(name);
        if std::env::var_os("GOVCLOUD_BLESS").is_some() {
            std::fs::write(&path, actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (GOVCLOUD_BLESS=1 writes it)", path.display()));
        assert!(
            expected == actual,
            "{name} differs from its golden file; GOVCLOUD_BLESS=1 cargo test --lib letters rewrites it\n--- actual ---\n{actual}"
        );
    }

    fn both(name: &str, letter: &Letter) {
        golden(&format!("{name}.md"), &letter.markdown());
        golden(&format!("{name}.html"), &letter.html());
    }

    #[test]
    fn chinese_dates_and_sizes_read_as_the_forms_write_them() {
        assert_eq!(
            chinese_date(jiff::civil::date(2026, 11, 27)),
            "2026年11月27日"
        );
        assert_eq!(chinese_date(jiff::civil::date(2027, 1, 5)), "2027年1月5日");
        assert_eq!(size(500), "500G");
        assert_eq!(size(1024), "1T");
        assert_eq!(size(1536), "1.5T");
        assert_eq!(size(2560), "2.5T");
        assert_eq!(size(1100), "1.08T");
        assert_eq!(size(0), "0G");
    }

    #[test]
    fn art12_application_letter_and_demand_form_match_the_golden_files() {
        let request: CloudResourceRequest = input("request.yaml");
        let letter = application(&request);
        both("application", &letter);
        let md = letter.markdown();
        // What a clerk checks on the paper: the title, the filing date in
        // Beijing time, the ticked boxes, the blank seal of the unit and the
        // dated opinion of the department.
        assert!(md.starts_with("# 关于财政金融部OA办公系统项目入驻政务云的申请"));
        assert!(
            md.contains("需虚拟服务器3台，云存储1T，备份存储1T，互联网IP地址1个，互联网带宽20M")
        );
        assert!(md.contains("2026年11月2日"));
        assert!(md.contains("■云服务器 ■云备份 □专享云"));
        assert!(md.contains("■统一电子印章服务"));
        assert!(md.contains("□文件接入 ■接口接入 □数据库接入"));
        assert!(md.contains(&format!("（公　章）<br>{DATE_BLANK}")));
        assert!(md.contains(
            "同意按申请配置开通，请按时完成等级保护测评备案。<br><br>（公　章）<br>2026年11月9日"
        ));
    }

    #[test]
    fn art12_an_undecided_application_leaves_the_department_box_blank() {
        let mut request: CloudResourceRequest = input("request.yaml");
        request.status = None;
        let md = application(&request).markdown();
        assert!(md.contains(&format!(
            "| 管理部门意见： | <br><br>（公　章）<br>{DATE_BLANK} |"
        )));
        // The letter is dated the day the request was created.
        assert!(md.contains("2026年11月2日"));
    }

    #[test]
    fn art14_art16_opening_letter_and_reply_match_the_golden_files() {
        let request: CloudResourceRequest = input("request.yaml");
        let tenancy: Tenancy = input("tenancy.yaml");
        let letter = opening(&tenancy, filed_on(&request)).unwrap();
        both("opening", &letter);
        let md = letter.markdown();
        assert!(md.contains("你单位2026年11月2日申请的关于财政金融部OA办公系统项目的政务云资源，已于2026年11月10日完成开通，请予以确认。"));
        assert!(md.contains("# 回　函"));
        // The reply is dated the day the unit confirmed delivery.
        assert!(md.ends_with("起步区财政金融部<br><br><br>2026年11月12日</p>\n\n"));
    }

    #[test]
    fn art16_an_unconfirmed_reply_is_left_for_the_unit_to_date() {
        let mut tenancy: Tenancy = input("tenancy.yaml");
        tenancy.status.as_mut().unwrap().delivery_confirmed_at = None;
        let md = opening(&tenancy, None).unwrap().markdown();
        assert!(md.ends_with(&format!("<br><br><br>{DATE_BLANK}</p>\n\n")));
        assert!(md.contains(&format!("你单位{DATE_BLANK}申请的")));
    }

    #[test]
    fn art14_an_undelivered_tenancy_has_no_opening_letter() {
        let mut tenancy: Tenancy = input("tenancy.yaml");
        tenancy.status.as_mut().unwrap().delivered_at = None;
        let err = opening(&tenancy, None).unwrap_err();
        assert_eq!(err, Error::NotDelivered("finance-oa".into()));
        assert!(err.to_string().contains("not been delivered"));
    }

    #[test]
    fn art17_change_form_matches_the_golden_files() {
        let change: ChangeRequest = input("change-modify.yaml");
        let letter = super::change(&change).unwrap();
        both("change-modify", &letter);
        let md = letter.markdown();
        assert!(
            md.contains("| 变更/注销前配置 | 虚拟服务器 app：2台，每台4核CPU、8G内存、系统盘40G")
        );
        assert!(md.contains("虚拟服务器 db：1台，每台8核CPU、32G内存、系统盘40G、数据盘500G"));
        assert!(md.contains("| 变更/注销后配置 |"));
        assert!(md.contains("备份存储：512G"));
        assert!(md.contains("同意。<br><br>（公　章）<br>2027年1月8日"));
    }

    #[test]
    fn art19_cancellation_form_matches_the_golden_files() {
        let change: ChangeRequest = input("change-terminate.yaml");
        let letter = super::change(&change).unwrap();
        both("change-terminate", &letter);
        let md = letter.markdown();
        assert!(md.contains("| 变更/注销后配置 | 注销 |"));
        assert!(md.contains("停用情形：上级单位统建了平台"));
        assert!(md.contains("拟于2027年1月15日起停止使用"));
        assert!(md.contains("云存储 uploads：1.5T（ssd）"));
    }

    #[test]
    fn art17_a_change_not_yet_filled_in_says_so() {
        let mut change: ChangeRequest = input("change-modify.yaml");
        change.status = None;
        assert_eq!(
            super::change(&change).unwrap_err(),
            Error::NotFilledIn("finance-oa-resize-db".into())
        );
    }

    #[test]
    fn the_largest_quantities_are_written_out_not_overflowed() {
        // Found by the letters fuzz target: summing counts and sizes overflowed.
        let mut request: CloudResourceRequest = input("request.yaml");
        let r = &mut request.spec.resources;
        r.vm_groups[0].count = u32::MAX;
        r.vm_groups[1].count = u32::MAX;
        r.cloud_storage.push(r.cloud_storage[0].clone());
        r.cloud_storage[0].size_gib = u32::MAX;
        r.cloud_storage[1].size_gib = u32::MAX;
        let md = application(&request).markdown();
        assert!(md.contains(&format!("需虚拟服务器{}台", u32::MAX)), "{md}");
        assert!(md.contains("云存储8388608T"), "{md}");
        assert_eq!(size(u64::from(u32::MAX)), "4194304T");
    }

    #[test]
    fn text_from_the_objects_is_escaped() {
        let mut request: CloudResourceRequest = input("request.yaml");
        request.spec.system.purpose = "<script>alert(1)</script> | *x*".into();
        let letter = application(&request);
        let html = letter.html();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; | *x*"));
        let md = letter.markdown();
        assert!(md.contains("&lt;script&gt;alert(1)&lt;/script&gt; \\| \\*x\\*"));
    }
}
