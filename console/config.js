// The API's base URL. Empty: the API is this page's own origin, as it is
// wherever the console is served (the local server serves both; in the
// cloud one CloudFront distribution serves the console, the item pages and
// the API). Set it only to point a copy of the console at another API.
window.FLASHSALE_API = "";
