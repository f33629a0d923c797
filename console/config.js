// The API's base URL. Empty: the API is this page's own origin (the local
// server serves both). scripts/deploy-console.sh replaces this file in the
// cloud with the stack's ApiUrl.
window.FLASHSALE_API = "";
