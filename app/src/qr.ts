import QRCode from 'qrcode';

/** An SVG QR code (string) for `text`, sized by its container. */
export function qrSvg(text: string): Promise<string> {
  return QRCode.toString(text, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
}
