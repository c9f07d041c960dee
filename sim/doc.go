// Package sim is a simulator of impact.com's Advertiser Conversions API for
// tests and trial runs: an HTTP server on loopback that checks credentials,
// the minimum fields and their formats, deduplicates OrderIds per event
// type, answers QUEUED with submission ids, keeps a quota with the
// rate-limit headers, processes the submissions later, creates actions for
// the tracked ones, and serves the submission records and the actions.
// Faults can be injected at random (latency, 5xx, dropped connections,
// slow bodies, 429 bursts) or scripted one request at a time, and changed
// while it runs.
//
// It keeps what it accepted and every request it saw, so that a test can
// assert exactly what arrived and when. Its checks are the API's rules in
// convpipe/pipeline/rules, written from the API's documentation: the table
// the mapping checks every order by, so that what `convpipe validate`
// passes, the simulator accepts (convpipe's own stricter rules, marked
// Policy there, it leaves out). Its answers' wording is the API's.
//
// # Endpoints
//
//   - POST /Advertisers/{SID}/Conversions: a form or JSON body, checked
//     (unknown order-level field names are refused as impact refuses
//     them); answered 200 QUEUED with a QueuedUri, or 400.
//   - GET /Advertisers/{SID}/APISubmissions/{id}: Status Queued, then In
//     Progress (from half of Config.CompleteAfter), then Complete with its
//     CompletionDate, ErrorType and ErrorReason; 404 for an unknown id and
//     once the record is older than Config.KeepSubmissions (90 days).
//   - GET /Advertisers/{SID}/Actions: the actions of tracked conversions,
//     newest first, in impact's list envelope (@page, @numpages, @total,
//     @nextpageuri, ..., Actions; every value a string). CampaignId is
//     required; StartDate/EndDate (creation), ActionDateStart/End (event
//     date) and LockingDateStart/End each come in pairs at most 45 days
//     apart, starting at most 3 years back; with no dates, the last 7 days
//     of creation; PageSize 2,000 to 20,000 (default 20,000), Page from 1;
//     a result over 10 pages is a 400. An action is PENDING until
//     Config.LockAfter after its event date, APPROVED after, REVERSED
//     after Server.Reverse.
//
// Every routed answer counts against Config.Quota and carries the
// rate-limit headers (Config.Headers, Config.ResetFormat); a 429 carries
// Retry-After unless Config.OmitRetryAfter.
//
// # Processing and the simulated clock
//
// Submissions, actions, the deduplication window and the 90 days follow
// the simulated clock (Server.Now), which Server.Advance moves on; the
// quota follows the wall clock. A conversion is processed as
// Config.Processing says: Campaigns (others: Contract Error /
// CONTRACT_NOT_FOUND), EventTypes (others: Validation /
// ACTIONTRACKER_NOT_FOUND), RestrictedPromoCodes (RESTRICTED_PROMOCODE),
// AssociationWindow (older event dates: OUTSIDE_ASSOCIATION_WINDOW), and
// ErrorRate, a share failed with one of those reasons at random (seeded by
// Config.Seed). A failed conversion makes no action and does not take its
// OrderId. With Config.RedateAfter, an action whose event date is older
// than that at submission is re-dated to its submission time, as impact
// does with late conversions. A duplicate OrderId is answered as Config.Duplicates says: by
// default QUEUED, its submission Complete with CONV_DUPLICATE; as a 400
// field error (DuplicateError) or a 400 with ErrorReason (DuplicateReason)
// on request. Server.Submit records a conversion without a request, for
// tests that need thousands.
package sim
