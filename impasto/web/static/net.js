// Talking to the studio's API: JSON answers, and the one-line message of a refusal.

export async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.detail) return String(body.detail);
  } catch {
    /* not JSON */
  }
  return `${response.status} ${response.statusText}`;
}

export async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(await errorText(response));
  return response.json();
}
