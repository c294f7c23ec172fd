//! `regmail check` of a plain template: every syntax and policy rule, read
//! only, against the state projected to the injected instant.

use super::{PipelineError, Registry, fill_from_header, ordered};
use crate::lifecycle;
use crate::policy;
use crate::rejection::{Code, Rejection, Severity, any_error};
use crate::reply::{self, Outcome, ReplyData};
use crate::store::Tx;
use crate::template::{self, HeaderFields};
use chrono::{DateTime, Utc};

/// The policy findings for `check` of a plain template, read only: the rules
/// for the registrar named in the header, and 6001 for a used client-trid
/// with other text, as `process` would report.
fn check_findings(
    tx: &Tx<'_>,
    fields: &HeaderFields,
    spec: &template::Spec,
    rules: policy::Rules<'_>,
    now: DateTime<Utc>,
    sha: &str,
) -> Result<Vec<Rejection>, PipelineError> {
    let Some(id) = fields.registrar_id else {
        return Ok(Vec::new());
    };
    let mut errors = policy::check(tx, id, spec, rules, now)?;
    if let (Some(trid), false) = (&fields.client_trid, fields.dry_run)
        && tx
            .prior_transaction(id, trid)?
            .is_some_and(|p| p.text_sha256 != sha)
    {
        errors.push(Rejection::new(Code::DuplicateClientTrid).key("client-trid"));
    }
    Ok(errors)
}

/// `regmail check` of an unsigned template: every syntax and policy rule, read
/// only, for the registrar named in its header. Returns the machine block.
pub fn check_template(reg: &mut Registry, text: &str) -> Result<(Outcome, String), PipelineError> {
    let now = reg.clock.now();
    let profile = reg.config.profile()?.clone();
    let (fields, parsed) = template::parse_template(text, &profile, &reg.config.limits);
    let mut data = ReplyData {
        registrar_id: fields.registrar_id,
        ..ReplyData::new("-", now)
    };
    fill_from_header(&mut data, &fields);
    let sha = crate::store::text_digest(text);
    let Registry {
        config, store, ids, ..
    } = reg;
    let rules = policy::Rules {
        config,
        profile: &profile,
    };
    store.simulate(|tx| -> Result<(), PipelineError> {
        let mut lctx = lifecycle::Ctx {
            config,
            profile: &profile,
            ids: ids.as_mut(),
            now,
        };
        lifecycle::catch_up(tx, &mut lctx)?;
        match parsed {
            Err(errors) => data.findings.extend(errors),
            Ok((spec, warnings)) => {
                data.findings.extend(warnings);
                data.object = Some(spec.object().to_string());
                data.findings
                    .extend(check_findings(tx, &fields, &spec, rules, now, &sha)?);
                data.avail = policy::answer(tx, &spec)?;
                data.findings.push(Rejection::new(Code::DryRun));
            }
        }
        Ok(())
    })?;
    data.findings = ordered(std::mem::take(&mut data.findings));
    if any_error(&data.findings) {
        data.findings
            .retain(|r| r.code.severity() != Severity::Info);
    } else {
        data.outcome = Outcome::Success;
    }
    Ok((data.outcome, reply::machine_block(&data)))
}
