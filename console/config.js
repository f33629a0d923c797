// The API's base URL. Empty: the API is this page's own origin, as it is
// wherever the console is served (the local server serves both; in the
// cloud one CloudFront distribution serves the console, the item pages and
// the API, which answers no other origin's scripts: it has no CORS).
window.FLASHSALE_API = "";
