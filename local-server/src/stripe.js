// A stand-in for Stripe.js (https://js.stripe.com/v3/), served by the
// local server's Stripe.js stand-in (local-server/src/stripe_js.rs): the
// part of its API a shop's card form uses, speaking to the stand-in as
// Stripe.js speaks to api.stripe.com. Real Stripe.js draws its fields in
// iframes so the page never sees the card; here they are plain inputs.
(() => {
  const base = new URL('..', document.currentScript.src).href;

  class CardElement {
    constructor() { this.inputs = {}; }

    mount(target) {
      const parent = typeof target === 'string' ? document.querySelector(target) : target;
      for (const [name, placeholder, size] of [['number', '4242 4242 4242 4242', 19], ['exp', 'MM / YY', 7], ['cvc', 'CVC', 4]]) {
        const input = document.createElement('input');
        Object.assign(input, { name: `card-${name}`, placeholder, size, inputMode: 'numeric', autocomplete: `cc-${name === 'exp' ? 'exp' : name === 'cvc' ? 'csc' : 'number'}` });
        input.setAttribute('aria-label', `Card ${name}`);
        this.inputs[name] = input;
        parent.append(input);
      }
    }

    card() {
      const [month, year] = this.inputs.exp.value.split('/').map((part) => part.trim());
      return {
        number: this.inputs.number.value.replace(/\s+/g, ''),
        exp_month: month,
        exp_year: year && year.length === 2 ? `20${year}` : year,
        cvc: this.inputs.cvc.value.trim(),
      };
    }
  }

  window.Stripe = (publishableKey) => ({
    elements: () => ({ create: (type) => { if (type !== 'card') throw new Error(`no ${type} element here`); return new CardElement(); } }),

    /** As Stripe.js: `{paymentIntent}` once confirmed, else `{error}`. */
    async confirmCardPayment(clientSecret, { payment_method: { card } }) {
      const intent = clientSecret.split('_secret_')[0];
      const form = new URLSearchParams({ key: publishableKey, client_secret: clientSecret, 'payment_method_data[type]': 'card' });
      for (const [field, value] of Object.entries(card.card())) form.append(`payment_method_data[card][${field}]`, value || '');
      try {
        const reply = await fetch(`${base}v1/payment_intents/${intent}/confirm`, { method: 'POST', body: form });
        const body = await reply.json();
        if (!reply.ok || body.error) return { error: body.error || { message: `Stripe answered ${reply.status}` } };
        if (body.status !== 'succeeded' && body.status !== 'processing') {
          return { error: body.last_payment_error || { message: `The payment is ${body.status}` } };
        }
        return { paymentIntent: body };
      } catch (error) {
        return { error: { message: String(error) } };
      }
    },
  });
})();
