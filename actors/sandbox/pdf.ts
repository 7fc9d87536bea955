/**
 * PDF rendering with pdfkit. Metadata dates are pinned so the same content gives the same bytes.
 */
import PDFDocument from 'pdfkit';

export interface PdfContent {
  title: string;
  paragraphs: string[];
}

const PINNED_DATE = new Date(Date.UTC(2024, 0, 1));

export function renderPdf(content: PdfContent): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const doc = new PDFDocument({
      size: 'A4',
      margin: 56,
      info: {
        Title: content.title,
        Producer: 'sandbox',
        Creator: 'sandbox',
        CreationDate: PINNED_DATE,
        ModDate: PINNED_DATE,
      },
    });
    const chunks: Buffer[] = [];
    doc.on('data', (c: Buffer) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
    doc.fontSize(18).text(content.title, { align: 'left' });
    doc.moveDown();
    doc.fontSize(11);
    for (const p of content.paragraphs) {
      doc.text(p, { align: 'justify' });
      doc.moveDown(0.6);
    }
    doc.end();
  });
}
