//! One alert rule compiled for the request path: [`Matcher::scope`] says whether an exchange is one the rule
//! looks at (its target group and listener: the ratio's denominator), [`Matcher::hit`] whether it is one the rule
//! counts. Both read only the record's plain fields: no allocation, no lock.

use waygate_config::{AlertMatch, Origin, StatusMatch};
use waygate_faults::{Cause, Source};

use crate::Exchange;

/// A rule's match, as the request path tests it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Matcher {
    /// A bit per cause (`Cause as usize`); zero: any cause, or none.
    causes: u64,
    status: Option<StatusMatch>,
    source: Option<Source>,
    target_group: Option<Box<str>>,
    listener: Option<Box<str>>,
    origin: Origin,
}

/// The bit of a cause in [`Matcher::causes`]: its position in the catalogue.
pub(crate) const fn cause_index(c: Cause) -> usize {
    c as usize
}

impl Matcher {
    pub fn new(m: &AlertMatch) -> Self {
        Self {
            causes: m.causes.iter().fold(0, |bits, c| bits | 1 << cause_index(*c)),
            status: m.status,
            source: m.source,
            target_group: m.target_group.as_deref().map(Into::into),
            listener: m.listener.as_deref().map(Into::into),
            origin: m.origin,
        }
    }

    /// The exchange is in the rule's scope: its target group and listener.
    pub fn scope(&self, ex: &Exchange) -> bool {
        self.target_group.as_deref().is_none_or(|g| ex.target_group.as_ref().is_some_and(|t| &*t.name == g))
            && self.listener.as_deref().is_none_or(|l| &*ex.listener == l)
    }

    /// Whether two rules look at the same exchanges (a ratio's denominator is the same).
    pub fn same_scope(&self, other: &Self) -> bool {
        self.target_group == other.target_group && self.listener == other.listener
    }

    /// An exchange in scope is one the rule counts.
    pub fn hit(&self, ex: &Exchange) -> bool {
        // Cheapest and most selective first: most records are successes that the status alone rules out.
        match self.status {
            Some(StatusMatch::Class(c)) if ex.elb_status / 100 != c => return false,
            Some(StatusMatch::Code(c)) if ex.elb_status != c => return false,
            _ => {}
        }
        if self.causes != 0 && ex.cause.is_none_or(|c| self.causes & (1 << cause_index(c)) == 0) {
            return false;
        }
        let origin = match self.origin {
            Origin::Any => true,
            Origin::Gateway => ex.is_gateway_generated(),
            Origin::Target => ex.is_target_response(),
        };
        if !origin || self.source.is_some_and(|s| ex.cause.is_none_or(|c| c.source() != s)) {
            return false;
        }
        // With no outcome filter at all the rule would count every request: it counts failures instead
        // (a gateway error, or a 5xx), which is what an alert without `when` means.
        let any_filter =
            self.status.is_some() || self.causes != 0 || self.source.is_some() || self.origin != Origin::Any;
        any_filter || ex.is_gateway_error() || ex.elb_status >= 500
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Attempt, TargetGroupRef};

    fn ex(status: u16, target_status: Option<u16>, cause: Option<Cause>, group: &str) -> Exchange {
        let mut ex = Exchange::new("public".into(), "app/waygate/public".into(), "127.0.0.1:1".parse().unwrap());
        ex.elb_status = status;
        ex.target_status = target_status;
        ex.cause = cause;
        ex.target_group = Some(TargetGroupRef::new(group));
        if let Some(c) = cause {
            ex.attempts.push(Attempt::failed("127.0.0.1:2", c));
        }
        ex
    }

    #[test]
    fn catalogue_order_is_the_bit_order_and_fits() {
        assert!(Cause::ALL.len() <= 64);
        for (i, c) in Cause::ALL.iter().enumerate() {
            assert_eq!(cause_index(*c), i, "{c}");
        }
    }

    #[test]
    fn matches_by_cause_status_source_origin_and_scope() {
        let refused = ex(502, None, Some(Cause::TargetConnectionRefused), "api");
        let target_503 = ex(503, Some(503), None, "api");
        let ok = ex(200, Some(200), None, "api");
        let no_route = ex(404, None, Some(Cause::NoRoute), "web");
        let m = |m: AlertMatch| Matcher::new(&m);

        let by_cause = m(AlertMatch { causes: vec![Cause::TargetConnectionRefused], ..Default::default() });
        assert!(by_cause.hit(&refused) && !by_cause.hit(&target_503) && !by_cause.hit(&no_route));

        let elb_5xx =
            m(AlertMatch { status: Some(StatusMatch::Class(5)), origin: Origin::Gateway, ..Default::default() });
        assert!(elb_5xx.hit(&refused) && !elb_5xx.hit(&target_503) && !elb_5xx.hit(&ok));

        let target_5xx =
            m(AlertMatch { status: Some(StatusMatch::Class(5)), origin: Origin::Target, ..Default::default() });
        assert!(!target_5xx.hit(&refused) && target_5xx.hit(&target_503));

        let code = m(AlertMatch { status: Some(StatusMatch::Code(404)), ..Default::default() });
        assert!(code.hit(&no_route) && !code.hit(&refused));

        let blamed_on_target = m(AlertMatch { source: Some(Source::Target), ..Default::default() });
        assert!(blamed_on_target.hit(&refused) && !blamed_on_target.hit(&no_route) && !blamed_on_target.hit(&ok));

        let api = m(AlertMatch { target_group: Some("api".into()), ..Default::default() });
        assert!(api.scope(&refused) && api.scope(&ok) && !api.scope(&no_route));
        // No outcome filter: failures only.
        assert!(api.hit(&refused) && api.hit(&target_503) && !api.hit(&ok));

        let other_listener = m(AlertMatch { listener: Some("internal".into()), ..Default::default() });
        assert!(!other_listener.scope(&refused));
    }
}
