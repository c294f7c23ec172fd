//! Objects as template text: the `info` reply's ready-to-edit update template,
//! and the before/after texts of the history. Public views leave out what a
//! person asked to hide (`whoishide*`).

use crate::store::{DomainRow, PersonRow};
use crate::template::{ObjectClass, Transaction, key_rule, render_body, render_object};

/// Who looks: the sponsor (or creator) sees everything, others public data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Every field.
    Full,
    /// What WHOIS would show.
    Public,
}

fn yn(b: bool) -> String {
    if b { "Y" } else { "N" }.to_string()
}

/// A domain as `key: value` pairs of an `update` (plus its nameservers).
pub fn domain_pairs(d: &DomainRow, command: &str) -> Vec<(String, String)> {
    let mut out = vec![
        ("domain".to_string(), d.name.clone()),
        ("command".to_string(), command.to_string()),
    ];
    for role in ["registrant", "admin-c", "tech-c", "zone-c"] {
        out.extend(d.role(role).into_iter().map(|h| (role.to_string(), h)));
    }
    for ns in &d.nameservers {
        out.push(("nserver".into(), ns.host.clone()));
        out.extend(
            ns.addresses
                .iter()
                .map(|a| ("remarks".to_string(), a.clone())),
        );
    }
    out.push(("client-hold".into(), yn(d.flags.client_hold)));
    out.push(("client-lock".into(), yn(d.flags.client_lock)));
    out
}

/// A person as `key: value` pairs of a `persupdate`.
pub fn person_pairs(p: &PersonRow, view: View) -> Vec<(String, String)> {
    let mut out = vec![
        ("nic-hdl".to_string(), p.handle.clone()),
        ("command".to_string(), "update".to_string()),
    ];
    out.extend(person_data(p, view));
    out
}

/// A person's data as `key: value` pairs, `type:` to `e-mail:`; the public
/// view leaves out what the person asked to hide and the remarks, the full
/// view adds the hide flags and the remarks. WHOIS shows the public view.
pub fn person_data(p: &PersonRow, view: View) -> Vec<(String, String)> {
    let d = &p.data;
    let mut out = vec![("type".to_string(), d.kind.as_str().to_string())];
    out.extend(
        d.personname
            .iter()
            .map(|v| ("personname".to_string(), v.clone())),
    );
    out.extend(
        d.organization
            .iter()
            .map(|v| ("organization".to_string(), v.clone())),
    );
    out.extend(
        d.street
            .iter()
            .map(|v| ("street address".to_string(), v.clone())),
    );
    out.push(("postal code".into(), d.postal_code.clone()));
    out.push(("city".into(), d.city.clone()));
    out.push(("country".into(), d.country.clone()));
    let show = |hidden: bool| view == View::Full || !hidden;
    if show(d.hide_phone) {
        out.push(("phone".into(), d.phone.clone()));
    }
    if show(d.hide_fax) {
        out.extend(d.fax.iter().map(|v| ("fax-no".to_string(), v.clone())));
    }
    if show(d.hide_email) {
        out.push(("e-mail".into(), d.email.clone()));
    }
    if view == View::Full {
        out.push(("whoishidephone".into(), yn(d.hide_phone)));
        out.push(("whoishidefax".into(), yn(d.hide_fax)));
        out.push(("whoishide".into(), yn(d.hide_email)));
        out.extend(d.remarks.iter().map(|v| ("remarks".to_string(), v.clone())));
    }
    out
}

fn continuable(class: ObjectClass, t: Transaction) -> impl Fn(&str) -> bool {
    move |key| key_rule(class, t, key).is_some_and(|r| r.continuable)
}

/// The object lines (`source:` last) of pairs, wrapped within 78 columns.
pub fn object_text(
    pairs: &[(String, String)],
    class: ObjectClass,
    t: Transaction,
    source: &str,
) -> String {
    let mut refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    refs.push(("source", source));
    render_object(&refs, continuable(class, t), 78)
}

/// A whole template: envelope and object text, ready to edit and sign.
pub fn template(t: Transaction, registrar_id: u32, object: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"US-ASCII\"?>\n<regframe>\n<regheader>\n<version>1.1</version>\n\
         <transaction>{}</transaction>\n<count>1</count>\n<accept-language>en</accept-language>\n\
         <registrar-id>{registrar_id}</registrar-id>\n<client-trid>CHANGE-ME</client-trid>\n</regheader>\n\
         <regbody><![CDATA[\n{}]]></regbody>\n</regframe>\n",
        t.name(),
        render_body(object)
    )
}
