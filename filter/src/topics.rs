//! Sensitive topics as scored keyword classifiers over the shared literal
//! pass: medical, legal and financial advice, and protected characteristics
//! in hiring contexts.
//!
//! Each topic is a weighted keyword list (templates, see
//! [`crate::literals::expand_template`]; a trailing `*` matches a word
//! prefix) and a threshold. A keyword counts fully the first time and a
//! quarter for each of its next two repeats, so one word said ten times does
//! not make a topic. A topic may require *context*: then a keyword counts
//! only when a context term lies within [`TopicSpec::context_window`] bytes
//! of it (normalised text). The hiring topic uses this: "pregnant" alone is
//! medical small talk, "pregnant" near "candidate" is a hiring question about
//! a protected characteristic.

use crate::literals::{Family, LazyLiteralSet, LiteralFamily, LiteralItem, LiteralSet, TextScan};

/// One topic classifier.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSpec {
    /// Name for findings and audit events (`medical_advice` …).
    pub name: String,
    /// Weighted keyword templates.
    pub keywords: Vec<(String, f32)>,
    /// Score at which the topic is flagged.
    pub threshold: f32,
    /// Context terms; when non-empty a keyword counts only near one.
    pub context: Vec<String>,
    /// Bytes between a keyword and a context term (normalised text).
    pub context_window: usize,
}

/// The verdict for one topic.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicVerdict {
    /// Index of the topic in the set.
    pub topic: u16,
    /// Its name.
    pub name: String,
    /// Summed keyword weight.
    pub score: f32,
    /// Score reached the threshold.
    pub flagged: bool,
    /// Spans of the counted keywords in the original text.
    pub spans: Vec<(usize, usize)>,
}

/// Repeats of one keyword beyond the first that still count.
const MAX_REPEATS: usize = 2;
/// Weight of each counted repeat relative to the first occurrence.
const REPEAT_FACTOR: f32 = 0.25;

/// A set of topic classifiers.
#[derive(Debug, Clone)]
pub struct TopicSet {
    topics: Vec<TopicSpec>,
    set: LazyLiteralSet,
}

impl TopicSet {
    /// Compiles topics. Errors name the topic.
    pub fn new(topics: Vec<TopicSpec>) -> Result<TopicSet, String> {
        if topics.len() > u16::MAX as usize {
            return Err("too many topics".into());
        }
        for t in &topics {
            if !(t.threshold.is_finite() && t.threshold > 0.0) {
                return Err(format!(
                    "topic {:?}: threshold must be a positive number",
                    t.name
                ));
            }
            if let Some((k, _)) = t.keywords.iter().find(|(_, w)| !w.is_finite()) {
                return Err(format!(
                    "topic {:?}: keyword {k:?} has no finite weight",
                    t.name
                ));
            }
        }
        LiteralSet::check(&Self::families_of(&topics)).map_err(|e| format!("topics: {e}"))?;
        Ok(TopicSet {
            topics,
            set: LazyLiteralSet::default(),
        })
    }

    /// The built-in topics (see [`builtin_topics`]).
    pub fn with_defaults() -> TopicSet {
        match Self::new(builtin_topics()) {
            Ok(t) => t,
            Err(e) => panic!("built-in topics do not compile: {e}"),
        }
    }

    fn families_of(topics: &[TopicSpec]) -> Vec<LiteralFamily> {
        topics
            .iter()
            .enumerate()
            .map(|(i, t)| LiteralFamily {
                family: Family::Topic(i as u16),
                items: t
                    .keywords
                    .iter()
                    .map(|(k, w)| LiteralItem::template(k.clone(), *w))
                    .chain(
                        t.context
                            .iter()
                            .map(|c| LiteralItem::template(c.clone(), 0.0)),
                    )
                    .collect(),
            })
            .collect()
    }

    /// Families to compile into a shared [`LiteralSet`]; `Family::Topic(i)`
    /// is topic `i`. Use with [`TopicSet::classify_scan`].
    pub fn literal_families(&self) -> Vec<LiteralFamily> {
        Self::families_of(&self.topics)
    }

    /// The topics.
    pub fn topics(&self) -> &[TopicSpec] {
        &self.topics
    }

    /// Classifies `text` with the set's own automaton.
    pub fn classify(&self, text: &str) -> Vec<TopicVerdict> {
        let set = self.set.get(|| self.literal_families());
        self.classify_scan(&set.scan_text(text, false))
    }

    /// Classifies a scan of a shared set. Returns a verdict for every topic
    /// with a non-zero score.
    pub fn classify_scan(&self, scan: &TextScan<'_>) -> Vec<TopicVerdict> {
        let mut out = Vec::new();
        let norm = &scan.normalized;
        for (ti, topic) in self.topics.iter().enumerate() {
            let fam = Family::Topic(ti as u16);
            let n_kw = topic.keywords.len() as u32;
            let hits: Vec<_> = scan.hits.iter().filter(|h| h.family == fam).collect();
            if hits.is_empty() {
                continue;
            }
            let context: Vec<(usize, usize)> = hits
                .iter()
                .filter(|h| h.item >= n_kw)
                .map(|h| (h.start, h.end))
                .collect();
            let needs_context = !topic.context.is_empty();
            // Repeats are counted per matched word, not per template.
            let mut counts: Vec<(&str, usize)> = Vec::new();
            let mut score = 0.0f32;
            let mut spans = Vec::new();
            let mut kws: Vec<_> = hits.iter().filter(|h| h.item < n_kw).collect();
            // Longest first among overlapping hits: "can my landlord evict me"
            // counts once, not also as "landlord".
            kws.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
            let mut counted_end = 0usize;
            for h in kws {
                if h.start < counted_end {
                    continue;
                }
                if needs_context {
                    let near = context.iter().any(|&(cs, ce)| {
                        let gap = if ce <= h.start {
                            h.start - ce
                        } else {
                            cs.saturating_sub(h.end)
                        };
                        gap <= topic.context_window
                    });
                    if !near {
                        continue;
                    }
                }
                let word = norm.text.get(h.start..h.end).unwrap_or("");
                let n = match counts.iter_mut().find(|(w, _)| *w == word) {
                    Some((_, n)) => {
                        *n += 1;
                        *n - 1
                    }
                    None => {
                        counts.push((word, 1));
                        0
                    }
                };
                let factor = match n {
                    0 => 1.0,
                    n if n <= MAX_REPEATS => REPEAT_FACTOR,
                    _ => 0.0,
                };
                if factor > 0.0 {
                    score += h.weight * factor;
                    spans.push(norm.original_span(h.start, h.end));
                    counted_end = h.end;
                }
            }
            if score > 0.0 {
                out.push(TopicVerdict {
                    topic: ti as u16,
                    name: topic.name.clone(),
                    score,
                    flagged: score >= topic.threshold,
                    spans,
                });
            }
        }
        out
    }
}

fn kw(list: &[(&str, f32)]) -> Vec<(String, f32)> {
    list.iter().map(|(k, w)| (k.to_string(), *w)).collect()
}

/// The built-in topics: `medical_advice`, `legal_advice`,
/// `financial_advice` (threshold 0.8 each) and `hiring_protected`
/// (threshold 0.5, keywords count only within 200 bytes of a hiring term).
pub fn builtin_topics() -> Vec<TopicSpec> {
    let medical = kw(&[
        ("(dosage|dosages|overdose|overdosed|contraindicat*|prescription|prescriptions|prescribe*)", 0.6),
        ("(dose|doses) of", 0.6),
        ("(drug|drugs|medication|medicine) interaction*", 0.7),
        ("side effect*", 0.6),
        ("(should|can|could|may) i (take|stop taking|mix|combine|double|skip|increase|decrease) + (my |)(dose|dosage|medication|meds|pills|tablets|ibuprofen|tylenol|aspirin|antibiotics|insulin)", 0.8),
        ("is it safe to (take|mix|combine|stop taking|drink alcohol with)", 0.7),
        ("how (much|many) (mg|milligrams|pills|tablets) (of |)", 0.6),
        ("(diagnos*|symptom*|medication*|antibiotic*|antidepressant*|painkiller*|opioid*)", 0.5),
        ("(chest|abdominal|stomach|back|joint|nerve) pain", 0.6),
        ("(blood pressure|blood sugar|heart rate|cholesterol|heart attack|heart disease|kidney|liver)", 0.4),
        ("(ibuprofen|acetaminophen|paracetamol|aspirin|tylenol|advil|motrin|aleve|naproxen|xanax|adderall|ritalin|metformin|lisinopril|insulin|oxycodone|hydrocodone|codeine|tramadol|sertraline|fluoxetine|prozac|zoloft|lexapro|amoxicillin|penicillin|warfarin|statin|statins|benzodiazepine*|melatonin|benadryl|prednisone|gabapentin|levothyroxine|ozempic|semaglutide|viagra)", 0.5),
        ("(doctor|physician|pediatrician|dermatologist|psychiatrist|treatment|treatments|infection|fever|rash|migraine|diabetes|cancer|tumor|tumour|vaccine|vaccines|surgery|disease|illness|depression|panic attack*|mental health|chemotherapy|dementia|asthma|eczema|pregnancy|pregnant|miscarriage|std|hiv)", 0.4),
        ("(mg|milligram*|tablet*|pill|pills|capsule*)", 0.3),
        ("(suicid*|self-harm|self harm)", 0.5),
        ("(pain|sick|hospital|clinic|nurse|medical|cough|headache|nausea|dizzy|dizziness|allerg*|vomiting|diarrhea|swelling|sore throat|insomnia)", 0.3),
    ]);
    let legal = kw(&[
        ("(legal advice|is it legal|is it illegal|is this legal|is that legal|is it against the law|statute of limitations|breach of contract|power of attorney|small claims|restraining order|cease and desist|wrongful termination|wrongful dismissal)", 0.8),
        ("can (i|they|my landlord|my employer|my boss) (sue|be sued|press charges|get arrested|go to jail|evict me|fire me)", 0.8),
        ("(lawyer|lawyers|attorney|attorneys|lawsuit|lawsuits|sue|sued|suing|litigation|custody|divorce|eviction|evict*|liable|liability|negligence|defamation|libel|slander|plaintiff|defendant|subpoena|felony|misdemeanor|misdemeanour|probation|parole|deport*|copyright infringement|criminal record|estate planning|legal rights|non-compete|prenup|prenuptial)", 0.5),
        ("(court|judge|landlord|tenant|tenants|lease|contract|contracts|trademark*|patent*|settlement|arrest*|bail|dui|visa|will and testament|my rights|immigration)", 0.3),
        ("(legal|illegal|law|laws|lawful|unlawful)", 0.25),
    ]);
    let financial = kw(&[
        ("(financial advice|investment advice|financial advisor|financial adviser)", 0.7),
        ("should i (buy|sell|invest|short|hold|pull out|cash out|refinance|move my)", 0.6),
        ("(is it|is now) a good time to (buy|sell|invest|refinance|take out a loan|get a mortgage)", 0.8),
        ("what (stock|stocks|crypto|coin|coins|etf|etfs|funds) should i", 0.8),
        ("where should i (invest|put my money|put my savings)", 0.8),
        ("(invest|invests|investing|investment|investments|portfolio|401k|401\\(k\\)|roth|ira|retirement savings|retirement account|retirement fund|mortgage|mortgages|refinanc*|credit score|credit card debt|crypto*|bitcoin|ethereum|etf|etfs|index fund*|mutual fund*|dividend*|capital gains|brokerage|annuit*|hedge fund*|options trading|day trading|forex|stock market|stocks|real estate investing|savings account|compound interest|bankrupt*)", 0.5),
        ("(stock|shares|loan|loans|debt|debts|interest rate*|tax|taxes|net worth|bond|bonds|budget|budgeting|inflation|returns|yield)", 0.25),
    ]);
    let protected = kw(&[
        ("(race|racial|ethnicity|ethnic|religion|religious|national origin|nationality|pregnan*|maternity|disabilit*|disabled|sexual orientation|gender identity|transgender|marital status|genetic information|skin color|skin colour|citizenship)", 0.6),
        ("(too old|too young|older (candidates|applicants|workers|people|employees|women|men)|younger (candidates|applicants|workers|people|employees|women|men)|plans to have (children|kids|a baby)|family plans|religious holidays|mental illness|foreign accent|heavy accent|hijab|turban|headscarf|wheelchair)", 0.6),
        ("(age|gender|female|females|woman|women|christian|christians|muslim|muslims|jew|jews|jewish|hindu|hindus|sikh|sikhs|buddhist|buddhists|catholic|catholics|atheist|atheists|asian|asians|hispanic|hispanics|latino|latinos|latina|latinas|african american|african americans|arab|arabs|immigrant|immigrants|foreign-born|foreign born|gay|lesbian|lesbians|lgbt|lgbtq|autism|autistic|adhd|elderly|millennial|millennials|boomer|boomers|gen z|years old|date of birth|accent)", 0.5),
        ("(sex|male|males|black|married|single mother|single mothers|single mom|single moms|mothers|moms|veteran|veterans|childcare|born in)", 0.35),
        ("(men|man|white|children|kids|young|old)", 0.2),
    ]);
    let hiring = [
        "(hire|hires|hiring|hired|candidate|candidates|applicant|applicants|resume|resumes|cv|cvs|interview*|recruit*|job offer|job offers|shortlist*|screen out|screening|onboard*|employee|employees|employer|workforce|talent|layoff|layoffs|lay off|fire|firing|terminate|termination|salary|salaries|pay raise|promotion|promotions|promote|promoted|performance review|performance reviews|job posting|job ad|job description|job opening|job application|job applications|vacancy|vacancies|new hire|new hires|staff|team member|position)",
    ];
    vec![
        TopicSpec {
            name: "medical_advice".into(),
            keywords: medical,
            threshold: 0.8,
            context: vec![],
            context_window: 0,
        },
        TopicSpec {
            name: "legal_advice".into(),
            keywords: legal,
            threshold: 0.8,
            context: vec![],
            context_window: 0,
        },
        TopicSpec {
            name: "financial_advice".into(),
            keywords: financial,
            threshold: 0.8,
            context: vec![],
            context_window: 0,
        },
        TopicSpec {
            name: "hiring_protected".into(),
            keywords: protected,
            threshold: 0.5,
            context: hiring.iter().map(|s| s.to_string()).collect(),
            context_window: 200,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> &'static TopicSet {
        static S: std::sync::OnceLock<TopicSet> = std::sync::OnceLock::new();
        S.get_or_init(TopicSet::with_defaults)
    }

    fn flagged(text: &str) -> Vec<String> {
        set()
            .classify(text)
            .into_iter()
            .filter(|v| v.flagged)
            .map(|v| v.name)
            .collect()
    }

    #[test]
    fn medical_questions_are_flagged() {
        for t in [
            "Can I take ibuprofen with my blood pressure medication?",
            "What's the right dosage of amoxicillin for a sinus infection?",
            "I have chest pain and dizziness, what could the diagnosis be?",
            "Is it safe to mix Xanax and alcohol?",
            "My doctor prescribed sertraline; what are the side effects?",
        ] {
            assert!(
                flagged(t).contains(&"medical_advice".to_string()),
                "{t}: {:?}",
                set().classify(t)
            );
        }
    }

    #[test]
    fn legal_questions_are_flagged() {
        for t in [
            "Can my landlord evict me without notice? Do I need a lawyer?",
            "Is it legal to record a phone call without consent in California?",
            "My employer fired me after I reported harassment; can I sue for wrongful termination?",
            "What's the statute of limitations for breach of contract?",
        ] {
            assert!(
                flagged(t).contains(&"legal_advice".to_string()),
                "{t}: {:?}",
                set().classify(t)
            );
        }
    }

    #[test]
    fn financial_questions_are_flagged() {
        for t in [
            "Should I sell my Tesla stock before earnings?",
            "Where should I invest my savings, index funds or bitcoin?",
            "Is it a good time to refinance my mortgage?",
            "How should I split my 401(k) between bonds and an S&P 500 ETF?",
        ] {
            assert!(
                flagged(t).contains(&"financial_advice".to_string()),
                "{t}: {:?}",
                set().classify(t)
            );
        }
    }

    #[test]
    fn protected_characteristics_in_hiring_are_flagged() {
        for t in [
            "Should we hire the candidate even though she is pregnant?",
            "Filter out applicants who are too old for a fast-paced startup.",
            "Rank these résumés but skip anyone with a foreign accent.",
            "Is it OK to ask an interviewee about their religion?",
            "We'd prefer younger candidates for the sales position.",
            "Don't promote her, she will go on maternity leave soon.",
        ] {
            assert!(
                flagged(t).contains(&"hiring_protected".to_string()),
                "{t}: {:?}",
                set().classify(t)
            );
        }
    }

    #[test]
    fn ordinary_text_is_not_flagged() {
        for t in [
            "The court of public opinion was harsh on the band's new album.",
            "I need a recipe for chicken stock and a budget-friendly dinner.",
            "The doctor in the TV series is hilarious.",
            "My grandmother is 90 years old and still gardens every day.",
            "Religion and philosophy were my favourite subjects at university.",
            "Our team hired a new designer last week.",
            "Write a story about a pregnant cat finding a home.",
            "The law of large numbers explains why casinos win.",
            "I take a pill of patience every Monday morning.",
        ] {
            assert!(flagged(t).is_empty(), "{t}: {:?}", set().classify(t));
        }
    }

    #[test]
    fn hiring_terms_far_from_protected_terms_do_not_combine() {
        let t = format!(
            "We hired three engineers this quarter. {} My sister is pregnant and very happy.",
            "Lorem ipsum dolor sit amet. ".repeat(12)
        );
        assert!(!flagged(&t).contains(&"hiring_protected".to_string()));
    }

    #[test]
    fn repeats_have_diminishing_weight() {
        let once = set().classify("symptoms");
        let many = set().classify(&"symptoms ".repeat(30));
        let s1 = once
            .iter()
            .find(|v| v.name == "medical_advice")
            .unwrap()
            .score;
        let s2 = many
            .iter()
            .find(|v| v.name == "medical_advice")
            .unwrap()
            .score;
        assert!(
            (s2 - s1 * (1.0 + 2.0 * REPEAT_FACTOR)).abs() < 1e-5,
            "{s1} {s2}"
        );
        assert!(!flagged(&"symptoms ".repeat(30)).contains(&"medical_advice".to_string()));
    }

    #[test]
    fn spans_point_into_the_original() {
        let t = "Can I take IBUPROFEN with lisinopril?";
        let v = set().classify(t);
        let m = v.iter().find(|v| v.name == "medical_advice").unwrap();
        assert!(
            m.spans.iter().any(|&(a, b)| t[a..b].contains("IBUPROFEN")),
            "{:?}",
            m.spans
        );
        assert!(
            m.spans.iter().any(|&(a, b)| &t[a..b] == "lisinopril"),
            "{:?}",
            m.spans
        );
    }

    #[test]
    fn invalid_specs_are_rejected() {
        let bad = TopicSpec {
            name: "x".into(),
            keywords: vec![("a (b".into(), 1.0)],
            threshold: 1.0,
            context: vec![],
            context_window: 0,
        };
        assert!(TopicSet::new(vec![bad]).unwrap_err().contains("Topic(0)"));
        let bad = TopicSpec {
            name: "y".into(),
            keywords: vec![],
            threshold: 0.0,
            context: vec![],
            context_window: 0,
        };
        assert!(TopicSet::new(vec![bad]).unwrap_err().contains("\"y\""));
    }

    #[test]
    fn works_in_a_shared_literal_set() {
        let t = set();
        let shared = LiteralSet::build(&t.literal_families()).unwrap();
        let text = "Should I sell my stocks and buy bitcoin?";
        assert_eq!(
            t.classify_scan(&shared.scan_text(text, false)),
            t.classify(text)
        );
    }
}
